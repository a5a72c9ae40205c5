//go:build !unix

package siege

func capFDs(int) (restore func(), note string) {
	return func() {}, "file-descriptor limit unchanged: not supported on this platform"
}

func raiseFDs() {}
