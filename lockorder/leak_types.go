package lockorder

// heldRecord is a copy of one held-lock entry, for VerifyNone and the leak
// report (production builds have none).
//
//lint:ignore U1000 production builds fill in no records
type heldRecord struct {
	class   string
	gid     int64
	waiting bool
	read    bool
	pcs     []uintptr
}
