package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/mtbert/mtbert/bert/cudabert"
	"github.com/mtbert/mtbert/kernels"
	"github.com/mtbert/mtbert/kernels/cuda"
	"github.com/mtbert/mtbert/mtl"
)

// addDeviceFlag registers -device on a command that computes.
func addDeviceFlag(fs *flag.FlagSet) *string {
	return fs.String("device", "", "where to compute: cpu, cuda, cuda:N or auto (default: $"+kernels.DeviceEnv+", else cpu)")
}

// useDevice is openDevice for a command that does not compute on the GPU yet.
func useDevice(flagValue string, stderr io.Writer) error {
	_, err := openDevice(flagValue, false, stderr)
	return err
}

// openDevice resolves -device (else $MTBERT_DEVICE, else cpu) and returns the CUDA context to
// compute on, or nil for the CPU. A CUDA device is opened through kernels/cuda, so that a
// missing or unusable driver is reported with its reason; "auto" falls back to the CPU with one
// line on stderr saying why. gpu says whether the command runs on the GPU (predict, serve, eval,
// encode, train, pretrain and bench bert do; demo and fill do not yet): when it does not, an explicit cuda device
// is refused with that reason and "auto" computes on the CPU with a line saying so.
func openDevice(flagValue string, gpu bool, stderr io.Writer) (*cuda.Context, error) {
	req, err := kernels.ResolveDevice(flagValue)
	if err != nil {
		return nil, err
	}
	if req.Kind == kernels.CPU && !req.Auto {
		return nil, nil
	}
	sel, err := cuda.Select(req)
	if err != nil {
		return nil, err
	}
	if sel.Note != "" {
		fmt.Fprintln(stderr, sel.Note)
		return nil, nil
	}
	if sel.Ctx == nil {
		return nil, nil
	}
	switch {
	case gpu:
		if req.Auto {
			fmt.Fprintf(stderr, "device auto: using %s (%s)\n", sel.Device, sel.Ctx.Info().Name)
		}
		return sel.Ctx, nil
	case req.Auto:
		fmt.Fprintf(stderr, "device auto: %s is usable, but this command does not run on the GPU yet: computing on the CPU\n", sel.Ctx.Info().Name)
		return nil, nil
	}
	return nil, fmt.Errorf("device %s (%s): this command does not run on the GPU yet (predict, serve, eval, encode, train, pretrain and bench bert do); use -device cpu", req, sel.Ctx.Info().Name)
}

// loadExtractor is mtl.LoadExtractor (or, for a folder in the reference's layout, mtt.Load:
// see loadModel) that, when gpu is set, runs the model's encoder passes on that device (a
// cudabert.Encoder, returned so that the caller can Close it; nil on the CPU), with the encoder
// quantised (int8) or, on the CPU, packed for inference only (prepareInference).
func loadExtractor(dir string, gpu *cuda.Context, int8 bool) (*mtl.Extractor, *cudabert.Encoder, error) {
	m, tok, err := loadModel(dir)
	if err != nil {
		return nil, nil, err
	}
	if err := prepareInference(m.Encoder, int8, gpu); err != nil {
		return nil, nil, err
	}
	ex := mtl.NewExtractor(m, tok)
	if gpu == nil {
		return ex, nil, nil
	}
	e, err := cudabert.New(gpu, m.Encoder)
	if err != nil {
		return nil, nil, err
	}
	ex.UseEncoder(e)
	return ex, e, nil
}
