package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/mtbert/mtbert/kernels"
	"github.com/mtbert/mtbert/kernels/cuda"
)

// addDeviceFlag registers -device on a command that computes.
func addDeviceFlag(fs *flag.FlagSet) *string {
	return fs.String("device", "", "where to compute: cpu, cuda, cuda:N or auto (default: $"+kernels.DeviceEnv+", else cpu)")
}

// useDevice resolves -device (else $MTBERT_DEVICE, else cpu). The CPU needs nothing. A CUDA
// device is opened through kernels/cuda, so that a missing or unusable driver is reported
// with its reason; "auto" falls back to the CPU with one line on stderr saying why. BERT does
// not run on the GPU yet (kernels/cuda holds the driver binding and the kernels, checked on
// the host emulation), so an explicit cuda device is refused with that reason and "auto"
// computes on the CPU with a line saying so.
func useDevice(flagValue string, stderr io.Writer) error {
	req, err := kernels.ResolveDevice(flagValue)
	if err != nil {
		return err
	}
	if req.Kind == kernels.CPU && !req.Auto {
		return nil
	}
	sel, err := cuda.Select(req)
	if err != nil {
		return err
	}
	if sel.Note != "" {
		fmt.Fprintln(stderr, sel.Note)
		return nil
	}
	if sel.Ctx == nil {
		return nil
	}
	if req.Auto {
		fmt.Fprintf(stderr, "device auto: %s is usable, but BERT does not run on the GPU yet: computing on the CPU\n", sel.Ctx.Info().Name)
		return nil
	}
	return fmt.Errorf("device %s (%s): BERT training and inference do not run on the GPU yet (kernels/cuda has the driver binding and the kernels, not yet wired to the model); use -device cpu", req, sel.Ctx.Info().Name)
}
