package synth

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/mtbert/mtbert/bert"
	"github.com/mtbert/mtbert/mtl/corpus"
	"github.com/mtbert/mtbert/mtl/train"
)

// Names of the synthetic tasks, in the order of the config WriteCorpus writes.
const (
	Medication = "medication" // n2c2-2018-like: Drug, Strength, Dosage, Route, Frequency
	Clinical   = "clinical"   // i2b2-2010-like: problem, test, treatment
	PHI        = "phi"        // i2b2-2014-like: NAME, DATE, PHONE, HOSPITAL, MRN
	NLI        = "nli"        // MedNLI-like: entailment, neutral, contradiction
	STS        = "sts"        // clinical STS-like: score 0-5
)

// Types lists the entity types of each synthetic NER task.
var Types = map[string][]string{
	Medication: {"Drug", "Strength", "Dosage", "Route", "Frequency"},
	Clinical:   {"problem", "test", "treatment"},
	PHI:        {"NAME", "DATE", "PHONE", "HOSPITAL", "MRN"},
}

// NLILabels are the entailment classes, in the order they are dealt.
var NLILabels = []string{"entailment", "neutral", "contradiction"}

// Corpus is a generated corpus. Medication, Clinical and PHI hold the same notes (same
// IDs and texts, in the same order), each with the spans of one task.
type Corpus struct {
	Medication, Clinical, PHI []corpus.Document
	// NLI pairs carry Label; STS pairs carry Score (HasScore), one of 0, 1, 2, 3, 4, 5.
	NLI, STS []corpus.Pair
}

// synthRNG is SplitMix64: tiny, fast and fixed forever, so that a seed gives the same corpus
// with every Go release.
type synthRNG struct{ s uint64 }

func (r *synthRNG) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// intn returns a number in [0, n); n > 0.
func (r *synthRNG) intn(n int) int { return int(r.next() % uint64(n)) }

func (r *synthRNG) pick(list []string) string { return list[r.intn(len(list))] }

// chance reports true with probability p/100.
func (r *synthRNG) chance(p int) bool { return r.intn(100) < p }

// Word lists. Every entry is plain text; no file is read.
var (
	synthDrugs = []string{"metoprolol", "lisinopril", "atorvastatin", "amlodipine", "metformin", "insulin glargine",
		"warfarin", "apixaban", "heparin", "enoxaparin", "furosemide", "hydrochlorothiazide", "spironolactone",
		"carvedilol", "digoxin", "amiodarone", "aspirin", "clopidogrel", "simvastatin", "pravastatin",
		"levothyroxine", "prednisone", "methylprednisolone", "albuterol", "ipratropium", "fluticasone",
		"montelukast", "omeprazole", "pantoprazole", "famotidine", "ondansetron", "acetaminophen", "ibuprofen",
		"oxycodone", "morphine", "hydromorphone", "gabapentin", "sertraline", "citalopram", "trazodone",
		"lorazepam", "haloperidol", "quetiapine", "vancomycin", "ceftriaxone", "piperacillin-tazobactam",
		"azithromycin", "levofloxacin", "ciprofloxacin", "metronidazole", "cefazolin", "nitroglycerin",
		"potassium chloride", "magnesium sulfate", "tamsulosin", "allopurinol", "donepezil", "losartan",
		"diltiazem", "Lasix", "Coumadin", "Tylenol", "Zofran", "Eliquis", "Lipitor"}
	synthStrengthNums = []string{"0.5", "1", "2", "2.5", "4", "5", "10", "12.5", "20", "25", "40", "50", "75", "81",
		"100", "125", "200", "250", "325", "400", "500", "650", "750", "1000"}
	synthUnits    = []string{"mg", "mg", "mg", "mcg", "units", "g", "mEq", "mg/kg"}
	synthDosages  = []string{"1 tablet", "2 tablets", "one tablet", "1 tab", "2 tabs", "1 capsule", "2 capsules", "one capsule", "2 puffs", "1 patch", "10 mL", "half a tablet", "1 vial", "two drops"}
	synthRoutes   = []string{"PO", "PO", "by mouth", "orally", "IV", "intravenously", "IM", "subcutaneously", "SC", "SL", "sublingually", "topically", "inhaled", "via nebulizer", "per rectum", "transdermally", "via G-tube"}
	synthFreqs    = []string{"daily", "once daily", "BID", "twice a day", "TID", "three times daily", "QID", "q4h", "q6h", "every 8 hours", "q12h", "QHS", "at bedtime", "every morning", "PRN", "as needed", "weekly", "q4-6h PRN", "every other day"}
	synthProblems = []string{"hypertension", "type 2 diabetes mellitus", "atrial fibrillation", "congestive heart failure",
		"chronic kidney disease", "COPD exacerbation", "community-acquired pneumonia", "urinary tract infection", "sepsis",
		"acute kidney injury", "hyperlipidemia", "coronary artery disease", "deep vein thrombosis", "pulmonary embolism",
		"cellulitis", "iron deficiency anemia", "hypothyroidism", "gout", "major depression", "generalized anxiety",
		"delirium", "seizure disorder", "ischemic stroke", "hypokalemia", "hyponatremia", "upper GI bleed", "acute pancreatitis",
		"cholecystitis", "asthma", "obstructive sleep apnea", "osteoarthritis", "chronic back pain", "peripheral neuropathy",
		"alcohol use disorder", "cirrhosis", "migraine", "benign prostatic hyperplasia", "dementia", "osteoporosis",
		"diabetic foot ulcer", "aortic stenosis", "lupus"}
	synthSymptoms = []string{"chest pain", "shortness of breath", "abdominal pain", "nausea", "vomiting", "diarrhea",
		"headache", "syncope", "fever", "productive cough", "fatigue", "dizziness", "leg swelling", "a rash", "confusion",
		"generalized weakness", "palpitations", "dysuria", "back pain", "blurred vision", "chills", "poor appetite"}
	synthFindings = []string{"a small left pleural effusion", "cardiomegaly", "left lower lobe consolidation",
		"ST elevations in the inferior leads", "an elevated white count", "a low hemoglobin", "an ejection fraction of 35%",
		"mild hydronephrosis", "a 2 cm renal cyst", "new T wave inversions", "an elevated lactate", "gallstones",
		"a subdural hematoma", "bilateral infiltrates", "an elevated creatinine", "a positive D-dimer", "hypokalemia",
		"pulmonary edema", "a urinary tract infection", "moderate aortic stenosis"}
	synthTests = []string{"CBC", "basic metabolic panel", "BMP", "chest x-ray", "CXR", "CT of the head", "CT abdomen and pelvis",
		"MRI of the brain", "echocardiogram", "EKG", "ECG", "troponin", "BNP", "hemoglobin A1c", "lipid panel", "TSH",
		"urinalysis", "urine culture", "blood cultures", "lactate", "creatinine", "potassium level", "INR",
		"liver function tests", "lipase", "D-dimer", "arterial blood gas", "abdominal ultrasound", "renal ultrasound",
		"stress test", "EEG", "lumbar puncture", "sodium level", "white blood cell count", "platelet count", "CT angiogram"}
	synthProcedures = []string{"physical therapy", "cardiac catheterization", "hemodialysis", "intubation", "blood transfusion",
		"IV fluids", "oxygen therapy", "CPAP", "PCI", "appendectomy", "laparoscopic cholecystectomy", "total knee replacement",
		"wound care", "chemotherapy", "radiation therapy", "pacemaker placement", "cardioversion", "incision and drainage",
		"thoracentesis", "paracentesis", "CABG", "insulin sliding scale"}
	synthFirst = []string{"John", "Mary", "Robert", "Patricia", "James", "Jennifer", "Michael", "Linda", "William", "Elizabeth",
		"David", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen", "Daniel", "Nancy",
		"Matthew", "Lisa", "Anthony", "Betty", "Mark", "Margaret", "Donald", "Sandra", "Steven", "Ashley", "Paul", "Kimberly",
		"Andrew", "Emily", "Joshua", "Donna", "Kenneth", "Michelle", "Kevin", "Dorothy", "Brian", "Carol", "George", "Amanda",
		"Wei", "Priya", "Ahmed", "Fatima", "José", "Zoë", "Chidi", "Yuki", "Olga", "Mateo"}
	synthLast = []string{"Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
		"Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee",
		"Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young",
		"Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker",
		"Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Patel", "Okafor", "Kowalski", "O'Brien", "Müller",
		"Chen", "Tanaka", "Ivanova", "Haddad", "Fitzgerald"}
	synthHospPlace = []string{"St. Mary's", "Riverside", "Mercy", "Lakeview", "Northshore", "Good Samaritan", "Saint Luke's",
		"Brookhaven", "Cedar Valley", "Mount Hope", "Fairview", "Pine Ridge", "Harborview", "Westfield", "Oak Park",
		"Sacred Heart", "Valley", "Bayside", "Greenfield", "Summit"}
	synthHospKind = []string{"Hospital", "Medical Center", "General Hospital", "Regional Medical Center", "Community Hospital", "Memorial Hospital"}
	synthMonths   = []string{"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"}
	synthDuration = []string{"2 days", "3 days", "one week", "two weeks", "several hours", "a month", "5 days", "10 days", "24 hours"}
	synthFiller   = []string{"Vital signs were stable.", "No acute distress.", "The patient tolerated the procedure well.",
		"Lungs clear to auscultation bilaterally.", "Will continue to monitor.", "Discussed the plan with the patient and family.",
		"Heart regular rate and rhythm, no murmurs.", "Abdomen soft, nontender.", "Code status: full code.",
		"Diet: cardiac, advance as tolerated.", "Ambulating without assistance."}
	synthNonClinical = []string{"The parking garage is closed on weekends.", "Please bring your insurance card to the front desk.",
		"The cafeteria is open until seven in the evening.", "Visiting hours end at eight.", "The east elevator is out of service.",
		"Interpreter services are available on request.", "The gift shop sells flowers and cards.",
		"Construction on the north wing will finish next spring.", "Wireless internet is free for guests.",
		"The billing office moved to the second floor."}
)

// Task indices of a tag.
const (
	tMed = iota
	tClin
	tPHI
)

type synthTag struct {
	task int
	typ  string
}

// synthSlots maps a slot name (trailing digits removed) to the spans it makes.
var synthSlots = map[string][]synthTag{
	"drug":      {{tMed, "Drug"}, {tClin, "treatment"}},
	"strength":  {{tMed, "Strength"}},
	"dose":      {{tMed, "Dosage"}},
	"route":     {{tMed, "Route"}},
	"freq":      {{tMed, "Frequency"}},
	"problem":   {{tClin, "problem"}},
	"symptom":   {{tClin, "problem"}},
	"finding":   {{tClin, "problem"}},
	"test":      {{tClin, "test"}},
	"procedure": {{tClin, "treatment"}},
	"patient":   {{tPHI, "NAME"}},
	"doctor":    {{tPHI, "NAME"}},
	"date":      {{tPHI, "DATE"}},
	"phone":     {{tPHI, "PHONE"}},
	"hospital":  {{tPHI, "HOSPITAL"}},
	"mrn":       {{tPHI, "MRN"}},
	"age":       nil,
	"sex":       nil,
	"duration":  nil,
	"weeks":     nil,
}

// value draws a value for a slot.
func (r *synthRNG) value(slot string) string {
	switch strings.TrimRight(slot, "0123456789") {
	case "drug":
		return r.pick(synthDrugs)
	case "strength":
		return r.pick(synthStrengthNums) + " " + r.pick(synthUnits)
	case "dose":
		return r.pick(synthDosages)
	case "route":
		return r.pick(synthRoutes)
	case "freq":
		return r.pick(synthFreqs)
	case "problem":
		return r.pick(synthProblems)
	case "symptom":
		return r.pick(synthSymptoms)
	case "finding":
		return r.pick(synthFindings)
	case "test":
		return r.pick(synthTests)
	case "procedure":
		return r.pick(synthProcedures)
	case "patient":
		return r.pick(synthFirst) + " " + r.pick(synthLast)
	case "doctor":
		return r.pick(synthLast)
	case "date":
		return r.date()
	case "phone":
		return r.phone()
	case "hospital":
		return r.pick(synthHospPlace) + " " + r.pick(synthHospKind)
	case "mrn":
		return r.mrn()
	case "age":
		return fmt.Sprint(18 + r.intn(72))
	case "sex":
		return r.pick([]string{"man", "woman", "male", "female", "gentleman", "lady"})
	case "duration":
		return r.pick(synthDuration)
	case "weeks":
		return fmt.Sprint(1 + r.intn(8))
	}
	panic("mtl: synth: unknown slot " + slot)
}

func (r *synthRNG) date() string {
	y, m, d := 1995+r.intn(30), 1+r.intn(12), 1+r.intn(28)
	switch r.intn(8) {
	case 0:
		return fmt.Sprintf("%02d/%02d/%d", m, d, y)
	case 1:
		return fmt.Sprintf("%d/%d/%02d", m, d, y%100)
	case 2:
		return fmt.Sprintf("%d-%02d-%02d", y, m, d)
	case 3:
		return fmt.Sprintf("%s %d, %d", synthMonths[m-1], d, y)
	case 4:
		return fmt.Sprintf("%s %d %d", synthMonths[m-1][:3], d, y)
	case 5:
		return fmt.Sprintf("%d %s %d", d, synthMonths[m-1], y)
	case 6:
		return fmt.Sprintf("%02d/%02d", m, d)
	default:
		return fmt.Sprintf("%s %d", synthMonths[m-1], y)
	}
}

func (r *synthRNG) phone() string {
	a, b, c := 201+r.intn(780), 200+r.intn(800), r.intn(10000)
	switch r.intn(5) {
	case 0:
		return fmt.Sprintf("(%d) %d-%04d", a, b, c)
	case 1:
		return fmt.Sprintf("%d-%d-%04d", a, b, c)
	case 2:
		return fmt.Sprintf("%d.%d.%04d", a, b, c)
	case 3:
		return fmt.Sprintf("%d-%04d", b, c)
	default:
		return fmt.Sprintf("%d %d %04d", a, b, c)
	}
}

func (r *synthRNG) mrn() string {
	switch r.intn(4) {
	case 0:
		return fmt.Sprintf("%07d", r.intn(10000000))
	case 1:
		return fmt.Sprintf("%08d", r.intn(100000000))
	case 2:
		return fmt.Sprintf("MR-%06d", r.intn(1000000))
	default:
		return fmt.Sprintf("%d%06d", 1+r.intn(9), r.intn(1000000))
	}
}

// Note templates by section. {slot} is filled with a drawn value (or vals[slot] when given).
var (
	synthHeaders = []string{
		"{hospital}\nPatient: {patient}    MRN: {mrn}\nDate of admission: {date}\n",
		"DISCHARGE SUMMARY\nName: {patient}  Medical record number: {mrn}\nAdmitted to {hospital} on {date}.\n",
		"{patient} (MRN {mrn}) was seen in clinic at {hospital} on {date}.\n",
		"Admission date: {date}  Discharge date: {date2}\nPatient name: {patient}  MR# {mrn}\nService: medicine, {hospital}\n",
		"CLINIC NOTE - {hospital}\n{patient}, MRN:{mrn}, visit {date}\n",
	}
	synthHPI = []string{
		"HPI: {age}-year-old {sex} with a history of {problem} and {problem2} who presents with {symptom} for {duration}.",
		"The patient is a {age} year old {sex} with {problem} who was admitted for {symptom}.",
		"{age} yo {sex} with PMH of {problem}, {problem2}, presenting with {symptom}.",
		"Patient reports {symptom} and {symptom2} since {date}.",
		"Mr. {patient} is a {age}-year-old with {problem} complaining of {symptom} for {duration}.",
		"Ms. {patient} presents with worsening {symptom}; she has known {problem}.",
	}
	synthTestSents = []string{
		"{test} showed {finding}.",
		"{test} was notable for {finding}.",
		"{test} was unremarkable.",
		"A {test} was obtained and revealed {finding}.",
		"{finding} was seen on {test}.",
		"Labs including {test} and {test2} were within normal limits.",
		"We checked a {test}, which demonstrated {finding}.",
		"Repeat {test} on {date} showed {finding}.",
	}
	synthMedSents = []string{
		"Started {drug} {strength} {route} {freq} for {problem}.",
		"Continue {drug} {strength} {freq}.",
		"{drug} {dose} {route} {freq} was prescribed.",
		"Home medications include {drug} {strength} {freq} and {drug2} {strength2} {route2} {freq2}.",
		"The patient was given {drug} {strength} {route} for {symptom}.",
		"Discontinued {drug} due to {symptom}.",
		"Take {dose} of {drug} {route} {freq}.",
		"{drug} was increased to {strength} {freq}.",
		"Patient was started on {drug} {strength} {route} {freq} for {problem}.",
		"Discharge medications: {drug} {strength} {route} {freq}; {drug2} {dose2} {freq2}.",
		"Received {drug} {strength} {route} once in the emergency department.",
	}
	synthProcSents = []string{
		"The patient underwent {procedure} on {date} without complications.",
		"{procedure} was performed for {problem}.",
		"Recommend {procedure} as an outpatient.",
		"Status post {procedure} for {problem}.",
		"{problem} was managed with {procedure}.",
	}
	synthFollowups = []string{
		"Follow up with Dr. {doctor} at {phone} on {date}.",
		"Call {phone} with any questions.",
		"Discussed with Dr. {doctor} from {hospital}.",
		"Seen by Dr. {doctor} on {date}.",
		"Transferred from {hospital} on {date}.",
		"Emergency contact: {patient}, daughter, {phone}.",
		"Appointment with Dr. {doctor} in {weeks} weeks; clinic phone {phone}.",
	}
)

// synthBuilder writes text and records the spans of each task.
type synthBuilder struct {
	b     strings.Builder
	spans [3][]corpus.Span
}

// render fills tpl into the builder. vals gives fixed slot values (may be nil); other slots
// are drawn from r.
func (sb *synthBuilder) render(r *synthRNG, tpl string, vals map[string]string) {
	for {
		i := strings.IndexByte(tpl, '{')
		if i < 0 {
			sb.b.WriteString(tpl)
			return
		}
		j := strings.IndexByte(tpl[i:], '}') + i
		sb.b.WriteString(tpl[:i])
		slot := tpl[i+1 : j]
		tpl = tpl[j+1:]
		v, ok := vals[slot]
		if !ok {
			v = r.value(slot)
		}
		start := sb.b.Len()
		sb.b.WriteString(v)
		end := sb.b.Len()
		for _, t := range synthSlots[strings.TrimRight(slot, "0123456789")] {
			sb.spans[t.task] = append(sb.spans[t.task], corpus.Span{Start: start, End: end, Type: t.typ, Text: v})
		}
	}
}

// synthNote generates one note: a header with PHI, the history, one or two test results, one
// to three medication sentences, maybe a procedure and some filler in random order, and one
// or two follow-up lines with PHI. It returns the note once per NER task, with that task's
// spans.
func synthNote(r *synthRNG, id string) [3]corpus.Document {
	var sb synthBuilder
	sb.render(r, r.pick(synthHeaders), nil)
	var body []string
	body = append(body, r.pick(synthHPI))
	for range 1 + r.intn(2) {
		body = append(body, r.pick(synthTestSents))
	}
	for range 1 + r.intn(3) {
		body = append(body, r.pick(synthMedSents))
	}
	if r.chance(60) {
		body = append(body, r.pick(synthProcSents))
	}
	for range r.intn(3) {
		body = append(body, r.pick(synthFiller))
	}
	// shuffle all but the HPI
	for i := len(body) - 1; i > 1; i-- {
		j := 1 + r.intn(i)
		body[i], body[j] = body[j], body[i]
	}
	var starts []int // sentence starts, capitalised below
	for i, s := range body {
		if i > 0 {
			if r.chance(25) {
				sb.b.WriteString("\n")
			} else {
				sb.b.WriteString(" ")
			}
		}
		starts = append(starts, sb.b.Len())
		sb.render(r, s, nil)
	}
	sb.b.WriteString("\n")
	for range 1 + r.intn(2) {
		sb.render(r, r.pick(synthFollowups), nil)
		sb.b.WriteString("\n")
	}
	// A sentence that opens with a lowercase value ("arterial blood gas was...") gets a capital
	// letter; ASCII case changes keep every byte offset.
	buf := []byte(sb.b.String())
	for _, p := range starts {
		if c := buf[p]; c >= 'a' && c <= 'z' {
			buf[p] = c - 'a' + 'A'
		}
	}
	text := string(buf)
	var out [3]corpus.Document
	for t := range out {
		for k := range sb.spans[t] {
			sb.spans[t][k].Text = text[sb.spans[t][k].Start:sb.spans[t][k].End]
		}
		corpus.SortSpans(sb.spans[t])
		out[t] = corpus.Document{ID: id, Text: text, Spans: sb.spans[t]}
	}
	return out
}

// NLI: a premise states facts about a patient; each hypothesis list is entailed, neutral or
// contradicted by construction (index as NLILabels).
type nliFrame struct {
	premise []string
	hyp     [3][]string
}

var synthNLIFrames = []nliFrame{
	{
		premise: []string{"{age}-year-old {sex} with a history of {problem} presents with {symptom}.",
			"The patient, a {age} year old {sex} with known {problem}, was admitted with {symptom}."},
		hyp: [3][]string{
			{"The patient has a history of {problem}.", "The patient has {symptom}.", "The patient is an adult."},
			{"The patient has a family history of {problem2}.", "The patient was recently started on {drug}.", "The patient lives alone."},
			{"The patient has no history of {problem}.", "The patient denies {symptom}.", "The patient is a child."},
		},
	},
	{
		premise: []string{"The patient was started on {drug} {strength} {freq} for {problem}.",
			"{drug} {strength} {route} {freq} was begun to treat {problem}."},
		hyp: [3][]string{
			{"The patient is taking {drug}.", "The patient is being treated for {problem}.", "The patient receives medication for {problem}."},
			{"The patient is allergic to {drug2}.", "The patient will follow up in two weeks.", "The patient has a history of {problem2}."},
			{"The patient has never received {drug}.", "The patient is not on any medications.", "The patient has no {problem}."},
		},
	},
	{
		premise: []string{"{test} showed {finding}.", "A {test} was obtained and demonstrated {finding}."},
		hyp: [3][]string{
			{"The patient had a {test}.", "The {test} was abnormal.", "The patient had testing that found {finding}."},
			{"The patient has {problem2}.", "A {test2} is pending.", "The patient was seen by cardiology."},
			{"The {test} was normal.", "No {test} was done.", "The patient has had no testing."},
		},
	},
	{
		premise: []string{"The patient reports {symptom} for {duration} and was febrile to 39.2 C.",
			"Patient complains of {duration} of {symptom} with a temperature of 39.5 C."},
		hyp: [3][]string{
			{"The patient has a fever.", "The patient has {symptom}.", "The patient is febrile."},
			{"The patient's {symptom} started after a fall.", "The patient smokes.", "The patient traveled recently."},
			{"The patient is afebrile.", "The patient has no complaints.", "The patient denies {symptom}."},
		},
	},
	{
		premise: []string{"The patient underwent {procedure} for {problem} on hospital day two.",
			"{problem} was treated with {procedure}."},
		hyp: [3][]string{
			{"The patient received {procedure}.", "The patient has {problem}.", "The patient was treated for {problem}."},
			{"The patient tolerated {drug} well.", "The patient will need {procedure2} later.", "The patient is married."},
			{"The patient refused all treatment.", "The patient has never had {procedure}.", "The patient does not have {problem}."},
		},
	},
}

// STS: frames with paraphrase templates; the main slot is kept at level 3, the minor slot
// changed at level 4.
type stsFrame struct {
	tpls        []string
	slots       []string
	main, minor string
}

var synthSTSFrames = []stsFrame{
	{tpls: []string{"Started {drug} {strength} {freq} for {problem}.", "{drug} {strength} {freq} was initiated for {problem}.",
		"The patient was begun on {drug} {strength} {freq} to treat {problem}.", "For {problem}, the patient was started on {drug} {strength} {freq}."},
		slots: []string{"drug", "strength", "freq", "problem"}, main: "drug", minor: "freq"},
	{tpls: []string{"{test} showed {finding}.", "{test} was notable for {finding}.", "{finding} was seen on {test}.", "{test} revealed {finding}."},
		slots: []string{"test", "finding"}, main: "finding", minor: "test"},
	{tpls: []string{"{age}-year-old {sex} presents with {symptom} for {duration}.", "A {age} year old {sex} came in with {duration} of {symptom}.",
		"{age} yo {sex} complaining of {symptom} for {duration}.", "The patient is a {age}-year-old {sex} with {symptom} lasting {duration}."},
		slots: []string{"age", "sex", "symptom", "duration"}, main: "symptom", minor: "duration"},
	{tpls: []string{"The patient underwent {procedure} for {problem}.", "{procedure} was performed to treat {problem}.",
		"{problem} was treated with {procedure}.", "For {problem}, {procedure} was done."},
		slots: []string{"procedure", "problem"}, main: "procedure", minor: "problem"},
	{tpls: []string{"Follow up in {weeks} weeks with Dr. {doctor}.", "Return to clinic with Dr. {doctor} in {weeks} weeks.",
		"The patient should see Dr. {doctor} again in {weeks} weeks.", "Dr. {doctor} will see the patient in {weeks} weeks."},
		slots: []string{"weeks", "doctor"}, main: "doctor", minor: "weeks"},
}

// renderPlain renders tpl to a string, capitalising its first letter.
func renderPlain(r *synthRNG, tpl string, vals map[string]string) string {
	var sb synthBuilder
	sb.render(r, tpl, vals)
	s := sb.b.String()
	if c, size := utf8.DecodeRuneInString(s); c >= 'a' && c <= 'z' {
		s = strings.ToUpper(string(c)) + s[size:]
	}
	return s
}

// drawVals draws a value for every slot, keeping those given in keep.
func drawVals(r *synthRNG, slots []string, keep map[string]string) map[string]string {
	v := map[string]string{}
	for _, s := range slots {
		if k, ok := keep[s]; ok {
			v[s] = k
		} else {
			v[s] = r.value(s)
		}
	}
	return v
}

// redraw returns a value of slot other than old (tries a few times).
func redraw(r *synthRNG, slot, old string) string {
	for range 20 {
		if v := r.value(slot); v != old {
			return v
		}
	}
	return old + " again"
}

func twoTemplates(r *synthRNG, tpls []string) (string, string) {
	i := r.intn(len(tpls))
	j := (i + 1 + r.intn(len(tpls)-1)) % len(tpls)
	return tpls[i], tpls[j]
}

// synthSTSPair builds a pair whose score is level (0..5) by construction.
func synthSTSPair(r *synthRNG, level int) (string, string) {
	fi := r.intn(len(synthSTSFrames))
	f := synthSTSFrames[fi]
	ta, tb := twoTemplates(r, f.tpls)
	va := drawVals(r, f.slots, nil)
	switch level {
	case 5: // paraphrase
		return renderPlain(r, ta, va), renderPlain(r, tb, va)
	case 4: // paraphrase with a minor detail changed
		vb := drawVals(r, f.slots, va)
		vb[f.minor] = redraw(r, f.minor, va[f.minor])
		return renderPlain(r, ta, va), renderPlain(r, tb, vb)
	case 3: // same main entity, the rest changed
		vb := map[string]string{}
		for _, s := range f.slots {
			if s == f.main {
				vb[s] = va[s]
			} else {
				vb[s] = redraw(r, s, va[s])
			}
		}
		return renderPlain(r, ta, va), renderPlain(r, tb, vb)
	case 2: // same kind of statement, nothing shared
		vb := map[string]string{}
		for _, s := range f.slots {
			vb[s] = redraw(r, s, va[s])
		}
		return renderPlain(r, ta, va), renderPlain(r, tb, vb)
	case 1: // two clinical statements of different kinds
		g := synthSTSFrames[(fi+1+r.intn(len(synthSTSFrames)-1))%len(synthSTSFrames)]
		return renderPlain(r, ta, va), renderPlain(r, r.pick(g.tpls), drawVals(r, g.slots, nil))
	default: // clinical versus administrative
		a, b := renderPlain(r, ta, va), r.pick(synthNonClinical)
		if r.chance(50) {
			a, b = b, a
		}
		return a, b
	}
}

// synthNLIPair builds a pair of the given label index (NLILabels).
func synthNLIPair(r *synthRNG, label int) (string, string) {
	f := synthNLIFrames[r.intn(len(synthNLIFrames))]
	vals := map[string]string{}
	for _, s := range []string{"age", "sex", "problem", "symptom", "drug", "strength", "freq", "route", "test", "finding", "duration", "procedure"} {
		vals[s] = r.value(s)
	}
	vals["problem2"] = redraw(r, "problem", vals["problem"])
	vals["drug2"] = redraw(r, "drug", vals["drug"])
	vals["test2"] = redraw(r, "test", vals["test"])
	vals["procedure2"] = redraw(r, "procedure", vals["procedure"])
	return renderPlain(r, r.pick(f.premise), vals), renderPlain(r, r.pick(f.hyp[label]), vals)
}

// Generate generates nNotes notes and nPairs pairs of each pair task from seed. The same
// seed gives the same corpus. Pair labels (NLI) and score levels (STS) are dealt in turn, so
// they are balanced to within one, then the pairs are shuffled.
func Generate(seed uint64, nNotes, nPairs int) (*Corpus, error) {
	if nNotes < 0 || nPairs < 0 {
		return nil, fmt.Errorf("mtl: synth: negative count (%d notes, %d pairs)", nNotes, nPairs)
	}
	r := &synthRNG{s: seed}
	c := &Corpus{}
	for i := range nNotes {
		d := synthNote(r, fmt.Sprintf("note-%05d", i+1))
		c.Medication = append(c.Medication, d[tMed])
		c.Clinical = append(c.Clinical, d[tClin])
		c.PHI = append(c.PHI, d[tPHI])
	}
	for i := range nPairs {
		lab := i % len(NLILabels)
		a, b := synthNLIPair(r, lab)
		c.NLI = append(c.NLI, corpus.Pair{ID: fmt.Sprintf("nli-%05d", i+1), TextA: a, TextB: b, Label: NLILabels[lab]})
	}
	for i := range nPairs {
		lvl := i % 6
		a, b := synthSTSPair(r, lvl)
		c.STS = append(c.STS, corpus.Pair{ID: fmt.Sprintf("sts-%05d", i+1), TextA: a, TextB: b, Score: float64(lvl), HasScore: true})
	}
	shuffle := func(p []corpus.Pair) {
		for i := len(p) - 1; i > 0; i-- {
			j := r.intn(i + 1)
			p[i], p[j] = p[j], p[i]
		}
	}
	shuffle(c.NLI)
	shuffle(c.STS)
	return c, nil
}

// synthSplit returns the [start, end) of train, dev and test in a list of n: dev and test
// each get n/10, train the rest.
func synthSplit(n int) [3][2]int {
	d := n / 10
	tr := n - 2*d
	return [3][2]int{{0, tr}, {tr, tr + d}, {tr + d, n}}
}

// VocabSize is the size of the vocabulary WriteCorpus trains (it stops earlier when
// nothing is left to merge).
const VocabSize = 4000

// WriteCorpus generates a corpus (Generate) and writes it under dir in the formats
// the readers take, with a vocabulary and a config:
//
//	synth.yaml                         the config (returned): five tasks, a small encoder
//	vocab.txt                          WordPiece, cased, trained on the training texts
//	medication|clinical|phi/SPLIT/     brat .txt + .ann, one pair per note (same texts)
//	nli/SPLIT.jsonl                    MedNLI JSON lines
//	sts/SPLIT.tsv                      sentence1 TAB sentence2 TAB score
//
// SPLIT is train, dev and test: dev and test each take a tenth of the notes and of the pairs,
// train the rest. nNotes and nPairs must be at least 10 (so every split is non-empty). dir is
// created if needed and must be empty: files of an earlier, larger corpus would otherwise be
// read with the new one. The same arguments give byte-identical files.
func WriteCorpus(dir string, seed uint64, nNotes, nPairs int) (configPath string, err error) {
	if nNotes < 10 || nPairs < 10 {
		return "", fmt.Errorf("mtl: synth: need at least 10 notes and 10 pairs (for train, dev and test), have %d and %d", nNotes, nPairs)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("mtl: synth: %w", err)
	}
	if ents, err := os.ReadDir(dir); err != nil {
		return "", fmt.Errorf("mtl: synth: %w", err)
	} else if len(ents) > 0 {
		return "", fmt.Errorf("mtl: synth: %s is not empty (%d entries); give an empty or new folder", dir, len(ents))
	}
	c, err := Generate(seed, nNotes, nPairs)
	if err != nil {
		return "", err
	}
	splits := []string{train.SplitTrain, train.SplitDev, train.SplitTest}
	write := func(path string, data []byte) error {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("mtl: synth: %w", err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return fmt.Errorf("mtl: synth: %w", err)
		}
		return nil
	}
	var vocabTexts []string
	noteSplit := synthSplit(nNotes)
	for task, docs := range map[string][]corpus.Document{Medication: c.Medication, Clinical: c.Clinical, PHI: c.PHI} {
		for si, sp := range splits {
			for _, d := range docs[noteSplit[si][0]:noteSplit[si][1]] {
				base := filepath.Join(dir, task, sp, d.ID)
				if err := write(base+".txt", []byte(d.Text)); err != nil {
					return "", err
				}
				if err := write(base+".ann", bratAnn(d)); err != nil {
					return "", err
				}
			}
		}
	}
	for _, d := range c.Medication[:noteSplit[0][1]] {
		vocabTexts = append(vocabTexts, d.Text)
	}
	pairSplit := synthSplit(nPairs)
	for si, sp := range splits {
		var nli, sts strings.Builder
		for _, p := range c.NLI[pairSplit[si][0]:pairSplit[si][1]] {
			b, err := json.Marshal(struct {
				Sentence1 string `json:"sentence1"`
				Sentence2 string `json:"sentence2"`
				GoldLabel string `json:"gold_label"`
				PairID    string `json:"pairID"`
			}{p.TextA, p.TextB, p.Label, p.ID})
			if err != nil {
				return "", fmt.Errorf("mtl: synth: %w", err)
			}
			nli.Write(b)
			nli.WriteByte('\n')
			if si == 0 {
				vocabTexts = append(vocabTexts, p.TextA, p.TextB)
			}
		}
		for _, p := range c.STS[pairSplit[si][0]:pairSplit[si][1]] {
			fmt.Fprintf(&sts, "%s\t%s\t%.1f\n", p.TextA, p.TextB, p.Score)
			if si == 0 {
				vocabTexts = append(vocabTexts, p.TextA, p.TextB)
			}
		}
		if err := write(filepath.Join(dir, NLI, sp+".jsonl"), []byte(nli.String())); err != nil {
			return "", err
		}
		if err := write(filepath.Join(dir, STS, sp+".tsv"), []byte(sts.String())); err != nil {
			return "", err
		}
	}
	// The word lists join the training texts so that the alphabet covers every character a
	// held-out note can contain (the lists are the domain, not the labels).
	for _, l := range [][]string{synthDrugs, synthProblems, synthSymptoms, synthFindings, synthTests, synthProcedures,
		synthFirst, synthLast, synthHospPlace, synthHospKind, synthMonths, synthRoutes, synthFreqs, synthDosages, synthUnits, synthNonClinical} {
		vocabTexts = append(vocabTexts, strings.Join(l, " "))
	}
	v, err := bert.TrainWordPiece(vocabTexts, bert.WordPieceOptions{Size: VocabSize})
	if err != nil {
		return "", fmt.Errorf("mtl: synth: vocabulary: %w", err)
	}
	if err := v.Save(filepath.Join(dir, "vocab.txt")); err != nil {
		return "", fmt.Errorf("mtl: synth: %w", err)
	}
	configPath = filepath.Join(dir, "synth.yaml")
	if err := write(configPath, []byte(synthConfig(seed))); err != nil {
		return "", err
	}
	if _, err := train.LoadConfig(configPath, ""); err != nil {
		return "", fmt.Errorf("mtl: synth: the written config does not load: %w", err)
	}
	return configPath, nil
}

// bratAnn renders a document's spans as brat T lines, offsets in code points.
func bratAnn(d corpus.Document) []byte {
	var b strings.Builder
	for i, s := range d.Spans {
		start := utf8.RuneCountInString(d.Text[:s.Start])
		end := start + utf8.RuneCountInString(s.Text)
		fmt.Fprintf(&b, "T%d\t%s %d %d\t%s\n", i+1, s.Type, start, end, s.Text)
	}
	return []byte(b.String())
}

// synthConfig is the YAML config of a synthetic corpus. The training settings suit a tiny
// randomly initialised encoder trained for minutes, not the paper's fine-tuning of BERT-base.
func synthConfig(seed uint64) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# Synthetic clinical corpus written by mtl.WriteCorpus (seed %d).
# Generated from templates: a tour of the pipeline, not a benchmark.
encoder:
  vocab: vocab.txt
  layers: 2
  hidden: 128
  heads: 2
  intermediate: 512
  max_position: 128
  lower_case: false
tasks:
`, seed)
	for _, t := range []string{Medication, Clinical, PHI} {
		fmt.Fprintf(&b, `  - name: %[1]s
    kind: ner
    format: brat
    train: %[1]s/train
    dev: %[1]s/dev
    test: %[1]s/test
    batch_size: 16
    max_length: 128
`, t)
	}
	fmt.Fprintf(&b, `  - name: %[1]s
    kind: pair-classification
    format: mednli
    train: %[1]s/train.jsonl
    dev: %[1]s/dev.jsonl
    test: %[1]s/test.jsonl
    batch_size: 32
    max_length: 64
  - name: %[2]s
    kind: regression
    format: sts
    train: %[2]s/train.tsv
    dev: %[2]s/dev.tsv
    test: %[2]s/test.tsv
    batch_size: 32
    max_length: 64
training:
  epochs: 3
  optimizer: adamw
  lr: 0.001
  warmup_steps: 20
  schedule: linear
  clip_norm: 1.0
  seed: %[3]d
  dropout: 0.1
  best_metric: mean
`, NLI, STS, int64(seed>>1))
	return b.String()
}
