//go:build !linux && !darwin && !windows

package peercred

// methods: this system has no peer check; Supported says so and Check
// answers Unchecked.
var methods []method
