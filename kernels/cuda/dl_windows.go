//go:build windows

package cuda

import (
	"errors"
	"syscall"
)

// On Windows the driver is nvcuda.dll; mtbert does not target it yet, but the package builds.

func dlopen(path string) (uintptr, error) {
	if path == DefaultLib {
		path = "nvcuda.dll"
	}
	h, err := syscall.LoadLibrary(path)
	return uintptr(h), err
}

func dlsym(h uintptr, name string) (uintptr, error) {
	p, err := syscall.GetProcAddress(syscall.Handle(h), name)
	if err == nil && p == 0 {
		err = errors.New("not found")
	}
	return p, err
}

func dlclose(h uintptr) { syscall.FreeLibrary(syscall.Handle(h)) }
