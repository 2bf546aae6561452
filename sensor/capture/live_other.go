//go:build !linux

package capture

// LiveSource is unavailable on this platform.
type LiveSource struct{ FileSource }

// OpenLive returns ErrUnsupported on this platform.
func OpenLive(cfg LiveConfig) (*LiveSource, error) { return nil, ErrUnsupported }

// OpenLiveGroup returns ErrUnsupported on this platform.
func OpenLiveGroup(cfg LiveConfig, workers int) ([]*LiveSource, error) {
	return nil, ErrUnsupported
}
