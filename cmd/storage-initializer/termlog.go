package main

import "os"

// writeTerminationLog leaves a one-line reason where Kubernetes shows it in
// `kubectl describe pod`. It is skipped silently when the file is not
// writable (outside a pod). The file is never created: kubelet provides it.
func writeTerminationLog(path, msg string) {
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return
	}
	defer f.Close()
	if len(msg) > 3500 { // kubelet keeps at most 4096 bytes
		msg = msg[:3500] + "…"
	}
	_, _ = f.WriteString(msg + "\n")
}
