package recordcodec_test

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/proto/tapirv1"
	"github.com/tapir-sensor/tapir/storage/recordcodec"
)

// TestEveryFieldStored fills every field of a flow.Record (through
// reflection, so a field added to flow.Record later is filled too) and
// expects the record back whole: a field the layout forgets fails here.
func TestEveryFieldStored(t *testing.T) {
	var r flow.Record
	seed := 1
	fill(t, reflect.ValueOf(&r).Elem(), "Record", &seed)
	r.Tuple.Family = flow.FamilyIPv6 // addresses of all 16 bytes
	r.Reason = flow.ReasonEvicted
	for i := range r.Tunnels.Levels { // codes the layout has
		r.Tunnels.Levels[i].Family = flow.FamilyIPv6
		r.Tunnels.Levels[i].Type = flow.TunnelGTPU
	}
	expectRoundTrip(t, &r)
}

// fill sets every field under v to a non-zero value that differs from
// field to field, and fails on a kind it does not know.
func fill(t *testing.T, v reflect.Value, path string, seed *int) {
	*seed++
	n := *seed
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("%s=%d", path, n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(n%250 + 1))
	case reflect.Int, reflect.Int64:
		v.SetInt(int64(n))
	case reflect.Float64:
		v.SetFloat(float64(n) + 0.25)
	case reflect.Array:
		for i := range v.Len() {
			fill(t, v.Index(i), path, seed)
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range v.Len() {
			fill(t, v.Index(i), fmt.Sprintf("%s[%d]", path, i), seed)
		}
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(t, v.Elem(), path, seed)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Unix(1_700_000_000+int64(n), int64(n)).UTC()))
			return
		}
		for i := range v.NumField() {
			fill(t, v.Field(i), path+"."+v.Type().Field(i).Name, seed)
		}
	default:
		t.Fatalf("%s: a %s field: teach fill (and the layout) about it", path, v.Kind())
	}
}

// tag appends a varint field to b.
func tag(b []byte, n protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(b, n, protowire.VarintType), v)
}

// TestDecodeErrors: each broken value fails with its sentinel, never a
// panic.
func TestDecodeErrors(t *testing.T) {
	good := fixedRecord()
	v1, err := recordcodec.Append(nil, &good)
	if err != nil {
		t.Fatal(err)
	}
	noSource := tapirv1.FromRecord(&good, nil)
	noSource.Source = nil
	legacyNoSource, err := proto.Marshal(noSource)
	if err != nil {
		t.Fatal(err)
	}
	header := []byte{0xff, 1}
	short := protowire.AppendTag(append([]byte(nil), header...), 1, protowire.BytesType)
	short = protowire.AppendBytes(short, []byte{1, 2, 3})
	for _, c := range []struct {
		name string
		v    []byte
		want error
	}{
		{"empty", nil, recordcodec.ErrCorrupt},
		{"marker alone", []byte{0xff}, recordcodec.ErrCorrupt},
		{"version 0", []byte{0xff, 0}, recordcodec.ErrUnknownVersion},
		{"version 2", append([]byte{0xff, 2}, v1[2:]...), recordcodec.ErrUnknownVersion},
		{"wire type 7", append(header, 0x0f), recordcodec.ErrCorrupt},
		{"truncated varint", append(header, 0x30, 0x80), recordcodec.ErrCorrupt},
		{"truncated", v1[:len(v1)-1], recordcodec.ErrCorrupt},
		{"wrong wire type", tag(append([]byte(nil), header...), 2, 1), recordcodec.ErrCorrupt},
		{"short flow id", short, recordcodec.ErrCorrupt},
		{"no endpoints", tag(append([]byte(nil), header...), 6, 6), recordcodec.ErrCorrupt},
		{"vlan out of range", tag(v1, 7, 70000), recordcodec.ErrCorrupt},
		{"unknown reason", tag(v1, 13, 200), recordcodec.ErrCorrupt},
		{"unknown family", tag(v1, 5, 9), recordcodec.ErrCorrupt},
		{"address for another family", tag(v1, 5, 1), recordcodec.ErrCorrupt},
		{"legacy garbage", []byte{0x0a, 0x05, 1}, recordcodec.ErrCorrupt},
		{"legacy without source", legacyNoSource, tapirv1.ErrBadRecord},
	} {
		var r flow.Record
		err := recordcodec.Decode(c.v, &r)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

// TestDecodeTruncations: every prefix of a value decodes or fails with a
// sentinel; none panics.
func TestDecodeTruncations(t *testing.T) {
	r := fixedRecord()
	v, err := recordcodec.Append(nil, &r)
	if err != nil {
		t.Fatal(err)
	}
	for i := range len(v) {
		var got flow.Record
		if err := recordcodec.Decode(v[:i], &got); err != nil && !errors.Is(err, recordcodec.ErrCorrupt) {
			t.Fatalf("prefix of %d bytes: %v", i, err)
		}
	}
}

// TestUnknownFieldsSkipped: a field a newer writer added (of any number,
// nested or not) is skipped by this reader, as the compatibility rule
// promises.
func TestUnknownFieldsSkipped(t *testing.T) {
	r := fixedRecord()
	v, err := recordcodec.Append(nil, &r)
	if err != nil {
		t.Fatal(err)
	}
	v = tag(v, 31, 5)
	v = protowire.AppendBytes(protowire.AppendTag(v, 500, protowire.BytesType), []byte("future"))
	v = protowire.AppendFixed32(protowire.AppendTag(v, 29, protowire.Fixed32Type), 7)
	var got flow.Record
	if err := recordcodec.Decode(v, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("got\n%+v\nwant\n%+v", got, r)
	}
}

// TestAppendRefuses: what the format cannot give back exactly is refused,
// and dst is left as it was.
func TestAppendRefuses(t *testing.T) {
	for name, mut := range map[string]func(*flow.Record){
		"reason":   func(r *flow.Record) { r.Reason = 99 },
		"family":   func(r *flow.Record) { r.Tuple.Family = 9 },
		"start":    func(r *flow.Record) { r.Start = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC) },
		"dir time": func(r *flow.Record) { r.Destination.Last = time.Date(1200, 1, 1, 0, 0, 0, 0, time.UTC) },
	} {
		r := fixedRecord()
		mut(&r)
		dst := []byte("keep")
		got, err := recordcodec.Append(dst, &r)
		if !errors.Is(err, recordcodec.ErrUnencodable) || string(got) != "keep" {
			t.Errorf("%s: %q, %v", name, got, err)
		}
	}
}

// TestZeroTimesAndEpoch: the zero time and the Unix epoch are different
// times and come back as such (times are present when not zero, even when
// their stored difference is 0).
func TestZeroTimesAndEpoch(t *testing.T) {
	r := fixedRecord()
	r.Start = time.Unix(0, 0).UTC()
	r.End = r.Start
	r.Source.First, r.Source.Last = r.Start, time.Time{}
	r.Destination = flow.DirStats{}
	expectRoundTrip(t, &r)
}

// expectRoundTrip stores r and expects it back field for field.
func expectRoundTrip(t *testing.T, r *flow.Record) {
	t.Helper()
	v, err := recordcodec.Append(nil, r)
	if err != nil {
		t.Fatal(err)
	}
	var got flow.Record
	if err := recordcodec.Decode(v, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, *r) {
		t.Fatalf("got\n%+v\nwant\n%+v", got, *r)
	}
}

// TestNonUTF8Strings: strings are stored as the bytes they are, where the
// wire message (proto3 strings) refuses what is not UTF-8.
func TestNonUTF8Strings(t *testing.T) {
	r := fixedRecord()
	r.App.HTTP.URI = "/\xff\xfe?q=\x80"
	r.App.DNS.QueryName = "caf\xe9.example"
	if _, err := proto.Marshal(tapirv1.FromRecord(&r, nil)); err == nil {
		t.Fatal("the wire message took invalid UTF-8: the premise of this test is gone")
	}
	expectRoundTrip(t, &r)
}
