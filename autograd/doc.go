// Package autograd is mtbert's reverse-mode automatic differentiation: an eager tape that
// records each differentiable operation as it runs (define-by-run) and replays the recorded
// backward closures in reverse order.
//
// A Tape owns the intermediate tensors of one step. Their buffers come from a pool and go back
// to it on Reset, so a training loop that runs the same shapes every step stops allocating
// large buffers after the first step:
//
//	tp := autograd.NewTape()
//	for step := range steps {
//		loss := model.Loss(tp, batch)
//		tp.Backward(loss)
//		opt.Step()
//		tp.Reset() // every Var made on tp is invalid from here
//	}
//
// NoGrad returns a tape that records nothing, for inference. Parameters are leaves made by
// NewParam; their gradients persist across Reset and accumulate until ZeroGrad.
//
// Every op lives in its own file with its backward closure beside the forward call, and has a
// row in the gradient-check table of the tests (CheckGrad, central differences).
package autograd
