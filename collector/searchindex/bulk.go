package searchindex

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/proto/tapirv1"
)

// doc is one flow record ready for the bulk API.
type doc struct {
	index   string
	id      string
	version uint64 // the segment
	body    []byte // ECS JSON
	rec     *kgo.Record
}

// size is the doc's share of a bulk body (approximately).
func (d *doc) size() int { return len(d.body) + len(d.index) + len(d.id) + 96 }

// header returns a Kafka record header's value.
func header(r *kgo.Record, key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

// makeDoc turns a flows-topic record into a document: ECS JSON (protobuf
// records are converted), id and version from the flow_id and segment
// headers (from the JSON when a producer set no headers), and the daily
// index of the flow's first-seen day.
func (ix *Indexer) makeDoc(r *kgo.Record) (doc, error) {
	body := r.Value
	if f, _ := header(r, "format"); f == "protobuf" {
		var pb tapirv1.FlowRecord
		if err := proto.Unmarshal(r.Value, &pb); err != nil {
			return doc{}, fmt.Errorf("protobuf record: %w", err)
		}
		var fr flow.Record
		if err := tapirv1.ToRecord(&pb, &fr); err != nil {
			return doc{}, fmt.Errorf("protobuf record: %w", err)
		}
		b, err := fr.MarshalJSON()
		if err != nil {
			return doc{}, fmt.Errorf("protobuf record to ECS: %w", err)
		}
		body = b
	}
	idText, seg, err := identity(r, body)
	if err != nil {
		return doc{}, err
	}
	id, err := flow.ParseID(idText)
	if err != nil || id.IsZero() {
		return doc{}, fmt.Errorf("flow id %q: %w", idText, flow.ErrBadID)
	}
	return doc{index: ix.index(id.Start()), id: idText, version: seg, body: body, rec: r}, nil
}

// identity returns the record's flow ID and segment.
func identity(r *kgo.Record, body []byte) (string, uint64, error) {
	id, okID := header(r, "flow_id")
	segText, okSeg := header(r, "segment")
	if okID && okSeg {
		seg, err := strconv.ParseUint(segText, 10, 32)
		if err != nil {
			return "", 0, fmt.Errorf("segment header %q: %w", segText, err)
		}
		return id, seg, nil
	}
	var e struct {
		Tapir struct {
			FlowID  string `json:"flow_id"`
			Segment uint64 `json:"segment"`
		} `json:"tapir"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		return "", 0, fmt.Errorf("ecs json: %w", err)
	}
	return e.Tapir.FlowID, e.Tapir.Segment, nil
}

// bulkAction is the action line of one document.
type bulkAction struct {
	Index struct {
		Index       string `json:"_index"`
		ID          string `json:"_id"`
		Version     uint64 `json:"version"`
		VersionType string `json:"version_type"`
	} `json:"index"`
}

// bulkBody renders docs as a _bulk request body.
func bulkBody(docs []doc) ([]byte, error) {
	var b bytes.Buffer
	for i := range docs {
		var a bulkAction
		a.Index.Index, a.Index.ID, a.Index.Version, a.Index.VersionType = docs[i].index, docs[i].id, docs[i].version, "external_gte"
		line, err := json.Marshal(&a)
		if err != nil {
			return nil, err
		}
		b.Write(line)
		b.WriteByte('\n')
		b.Write(bytes.TrimSpace(docs[i].body))
		b.WriteByte('\n')
	}
	return b.Bytes(), nil
}

// errBulkShape: a bulk response whose items do not match the request.
var errBulkShape = errors.New("bulk response items do not match the request")

// bulk sends docs in one _bulk request and sorts the outcome per document:
// written (indexed), refused as older than the stored segment (stale), refused for
// a transient reason (returned, to retry) or for good (dropped). err is a
// failure of the whole request (all to retry).
func (ix *Indexer) bulk(ctx context.Context, docs []doc) ([]doc, error) {
	body, err := bulkBody(docs)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, ix.cfg.RequestTimeout)
	defer cancel()
	start := time.Now()
	resp, err := ix.os.Bulk(rctx, opensearchapi.BulkReq{Body: bytes.NewReader(body)})
	if err != nil {
		return nil, fmt.Errorf("bulk: %w", err)
	}
	if len(resp.Items) != len(docs) {
		return nil, fmt.Errorf("%w: %d items for %d documents", errBulkShape, len(resp.Items), len(docs))
	}
	ix.m.bulkSeconds.Observe(time.Since(start).Seconds())
	var retry []doc
	for i, item := range resp.Items {
		res, ok := item["index"]
		if !ok {
			return nil, fmt.Errorf("%w: item %d has no index result", errBulkShape, i)
		}
		switch {
		case res.Status == 200 || res.Status == 201:
			ix.m.docs.WithLabelValues("indexed").Inc()
		case res.Status == 409:
			ix.m.docs.WithLabelValues("stale").Inc()
		case res.Status == 429 || res.Status >= 500:
			retry = append(retry, docs[i])
		default:
			reason, detail := "status_"+strconv.Itoa(res.Status), ""
			if res.Error != nil {
				reason, detail = res.Error.Type, res.Error.Reason
			}
			ix.drop(reason, detail, docs[i].rec)
		}
	}
	return retry, nil
}
