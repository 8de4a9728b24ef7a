//go:build cgo

package pkcs11

// SetTestHookInCall makes f run in every call on the HSM.
func SetTestHookInCall(f func()) { testHookInCall = f }
