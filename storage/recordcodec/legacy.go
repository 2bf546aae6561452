package recordcodec

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/proto/tapirv1"
)

// This file is the only one of the package that knows the wire schema
// (TestOnlyLegacyKnowsTheWire keeps it so): values written before the
// stored format had a version are read through it, and nothing is ever
// written in it again.

// decodeLegacy decodes a value written before the stored format had a
// version: the wire message itself.
func decodeLegacy(v []byte, r *flow.Record) error {
	var p tapirv1.FlowRecord
	if err := proto.Unmarshal(v, &p); err != nil {
		return fmt.Errorf("%w: legacy value: %w", ErrCorrupt, err)
	}
	if err := tapirv1.ToRecord(&p, r); err != nil {
		return fmt.Errorf("%w: legacy value: %w", ErrCorrupt, err)
	}
	return nil
}
