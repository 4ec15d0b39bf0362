// Command mtbert is the command line of mtbert: multitask clinical BERT in pure Go.
//
// Run "mtbert help" for the subcommands and "mtbert SUBCOMMAND -h" for the flags of each.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
)

// command is one subcommand: its one-line summary and its entry point.
type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{}

func register(name, summary string, run func(args []string, stdout, stderr io.Writer) error) {
	commands[name] = command{summary, run}
}

// errUsage marks a usage error already reported to the user (exit status 2).
var errUsage = errors.New("usage")

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "mtbert: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
	if err := cmd.run(args[1:], stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if errors.Is(err, errUsage) {
			return 2
		}
		fmt.Fprintf(stderr, "mtbert %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "mtbert: multitask clinical BERT in pure Go\n\nUsage: mtbert COMMAND [flags]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'mtbert COMMAND -h' for a command's flags.")
}

// newFlags returns a flag set that prints its usage line and flags on -h or a bad flag. The
// usage line is synopsis completed by usageLine with every flag it does not name.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: mtbert %s\n\n", usageLine(synopsis, fs))
		fs.PrintDefaults()
	}
	if loadsModels[name] {
		addModelLimitFlag(fs)
	}
	return fs
}

// namesFlag reports whether synopsis names the flag -name (as a whole flag, not part of a
// longer one).
func namesFlag(synopsis, name string) bool {
	return regexp.MustCompile(`(^|[\s\[|])-` + regexp.QuoteMeta(name) + `([\s\]|]|$)`).MatchString(synopsis)
}

// usageLine returns synopsis with "[-name V]" appended for every flag of fs it does not name,
// in name order (a "[flags]" placeholder is replaced by them), so that a command's usage line
// lists every flag it accepts, the shared ones (-device, -max-model-bytes) included.
func usageLine(synopsis string, fs *flag.FlagSet) string {
	var extra []string
	fs.VisitAll(func(f *flag.Flag) {
		if namesFlag(synopsis, f.Name) {
			return
		}
		arg, _ := flag.UnquoteUsage(f)
		switch arg {
		case "":
			extra = append(extra, "[-"+f.Name+"]")
			return
		case "int", "uint", "int64", "uint64":
			arg = "N"
		case "float":
			arg = "X"
		case "string":
			arg = strings.ToUpper(f.Name)
		default:
			arg = strings.ToUpper(arg)
		}
		extra = append(extra, "[-"+f.Name+" "+arg+"]")
	})
	if len(extra) == 0 {
		return strings.Replace(synopsis, " [flags]", "", 1)
	}
	if strings.Contains(synopsis, "[flags]") {
		return strings.Replace(synopsis, "[flags]", strings.Join(extra, " "), 1)
	}
	return synopsis + " " + strings.Join(extra, " ")
}

// parse parses args, mapping a bad flag to errUsage and -h to flag.ErrHelp.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "mtbert: unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		fs.Usage()
		return errUsage
	}
	return nil
}

// printJSON writes v as one JSON line.
func printJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
