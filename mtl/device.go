package mtl

import "github.com/mtbert/mtbert/autograd"

// DeviceStep computes a Trainer's steps on another device (a GPU: package mtl/cudamtl) so
// that this package imports no device code. The Trainer still draws the batches, keeps the
// schedule and the state; the device keeps the weights and optimiser moments between steps
// and writes them into the model's parameters and the Trainer's nn.Adam on Sync.
type DeviceStep interface {
	// Step runs the forward and backward passes of head h (the encoder's and the head's) on
	// bs, each batch's loss weighted by its share of total (the targets of all of them),
	// clips the global gradient norm of params to clip (0: none) and takes one optimiser step
	// on params with learning rate lr, exactly as Trainer.Step on the CPU. It returns the
	// step's loss and whether it updated anything (an mlm step that masked nothing does not).
	Step(h *Head, bs []Batch, total int, params []*autograd.Var, lr, clip float64) (loss float64, updated bool, err error)
	// Sync writes the device's weights into the model's parameters and its moments and step
	// counts into the optimiser (before evaluating or saving on the host).
	Sync() error
}

// SyncDevice writes the device's weights and optimiser state to the host when the trainer
// steps on a device (Trainer.Device); nothing otherwise.
func (tr *Trainer) SyncDevice() error {
	if tr.Device == nil {
		return nil
	}
	return tr.Device.Sync()
}

// deviceStep is the optimiser step of Step on tr.Device.
func (tr *Trainer) deviceStep(i int, bs []Batch, total int) (float64, error) {
	lr := tr.Sched.LR(tr.State.Step)
	loss, updated, err := tr.Device.Step(tr.Tasks[i].Head, bs, total, tr.stepParams(i), lr, tr.Clip)
	if updated {
		tr.Opt.LR = lr
	}
	return loss, err
}
