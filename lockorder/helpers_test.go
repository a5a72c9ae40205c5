package lockorder

// run runs f on a fresh goroutine and waits for it.
func run(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
}
