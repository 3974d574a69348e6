package ingest

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/sluicehq/sluice/ingest/s3source"
)

// FormatDeadLetter reads dead letters (as DeadLetter.AppendJSON writes them: NDJSON in an S3
// target's objects or a file target, or the documents of a dead-letter index read as an
// es:// source) and yields the record each one holds, to replay them: the record as it was
// (record, or record_base64 byte for byte), with the _id its original got (the letter's id,
// else DocumentID of the letter's object and offset), so that replaying a letter twice, or
// after part of a replay failed, writes one document. With an id field the record's own value
// is the id, as in the original run. A letter holding only the head of its record (truncated:
// record_length is more than it holds) is not replayable: it is dead-lettered again, never
// sent cut short. Each record carries its letter's Origin, so a letter that a replay writes
// again names the original object, offset and id, not the letter's.
const FormatDeadLetter = "deadletter"

// NotReplayable starts the reason of a letter that a replay cannot send (see
// FormatDeadLetter); replay counts them apart from the records that fail again.
const NotReplayable = "not replayable"

// Letter is a dead letter read back, with the fields a replay and a listing need.
type Letter struct {
	Object       string  `json:"object"`
	Offset       int64   `json:"offset"`
	ID           string  `json:"id"`      // the original's _id when not DocumentID(object, offset)
	Routing      string  `json:"routing"` // the original's routing, when it had one
	Index        string  `json:"index"`
	Status       int     `json:"status"`
	ErrorType    string  `json:"error_type"`
	Reason       string  `json:"reason"`
	Truncated    bool    `json:"truncated"`
	RecordLength int64   `json:"record_length"`
	RecordSHA256 string  `json:"record_sha256"` // hex
	Record       *string `json:"record"`
	RecordBase64 []byte  `json:"record_base64"` // decoded by encoding/json
}

// ParseLetter reads one line of a dead-letter object.
func ParseLetter(line []byte) (Letter, error) {
	var l Letter
	if err := json.Unmarshal(line, &l); err != nil {
		return Letter{}, fmt.Errorf("not a dead letter: %w", err)
	}
	return l, nil
}

// Original returns the record the letter holds, or why it cannot be replayed (the error
// starts with NotReplayable).
func (l *Letter) Original() ([]byte, error) {
	rec, err := l.heldRecord()
	if err != nil {
		return nil, err
	}
	if l.Truncated || l.RecordLength > int64(len(rec)) {
		return nil, fmt.Errorf("%s: the letter holds %d of the record's %d bytes", NotReplayable, len(rec), l.RecordLength)
	}
	return rec, nil
}

// heldRecord is the record, or the head of it, that the letter holds.
func (l *Letter) heldRecord() ([]byte, error) {
	switch {
	case l.Record != nil:
		return []byte(*l.Record), nil
	case l.RecordBase64 != nil:
		return l.RecordBase64, nil
	}
	return nil, fmt.Errorf("%s: the letter holds no record", NotReplayable)
}

// OriginalID is the _id the record got in the run that dead-lettered it: the letter's id,
// else the default id of its object and offset.
func (l *Letter) OriginalID() (string, error) {
	if l.ID != "" {
		return l.ID, nil
	}
	bucket, key, err := s3source.ParseURI(l.Object)
	if err != nil || key == "" {
		return "", fmt.Errorf("%s: the letter names no object (%q)", NotReplayable, l.Object)
	}
	return DocumentID(bucket, key, l.Offset), nil
}

// Replay returns the record the letter holds and the _id its original got, or why the letter
// cannot be replayed (the error starts with NotReplayable). The replay decoders and the
// listing's count of letters that are not replayable both ask it.
func (l *Letter) Replay() (record []byte, id string, err error) {
	if record, err = l.Original(); err != nil {
		return nil, "", err
	}
	if id, err = l.OriginalID(); err != nil {
		return nil, "", err
	}
	return record, id, nil
}

// Origin is where a record was first read when it has an identity of its own: a replayed
// dead letter's original (its object, its offset there and the _id and routing it was sent
// with), or a hit of an index source (its slice, its hit number there, its _id and routing).
// A dead letter of a record with an Origin names the origin instead of the chunk's own object
// and offset, so replaying that letter gives the original id (and routing) again.
type Origin struct {
	Object  string
	Offset  int64
	ID      string
	Routing string
}

// bytes is what an Origin held beside a request's document costs the budget.
func (o *Origin) bytes() int64 {
	return int64(len(o.Object)+len(o.ID)+len(o.Routing)) + originStructBytes
}

// originStructBytes is the size of an Origin itself (three string headers and an int64).
const originStructBytes = 56

// chargeOrigin takes from the budget what keeping o beside its document costs (nil: nothing);
// request.keepOrigin hands the bytes to the request that keeps it.
func (pr *producer) chargeOrigin(ctx context.Context, o *Origin) (int64, error) {
	if o == nil {
		return 0, nil
	}
	n := o.bytes()
	return n, pr.charge(ctx, n)
}

// letterDecoder yields the records of the dead letters another decoder reads (an object's
// NDJSON lines, or an index's hits): each record becomes the original it holds, with the
// original's id and its Origin; the record of a letter that is not replayable is the head
// the letter holds, with the letter's length and hash, so that its letter again is the same.
type letterDecoder struct {
	Decoder
	origin  Origin
	id      []byte
	routing []byte
}

func (d *letterDecoder) Next() (Record, error) {
	rec, err := d.Decoder.Next()
	if err != nil || rec.Err != nil {
		return rec, err
	}
	rec.ID, rec.Routing, rec.Origin = nil, nil, nil // the letter's own, not the original's
	l, err := ParseLetter(rec.Data)
	if err != nil {
		rec.Err = fmt.Errorf("%s: %w", NotReplayable, err)
		return rec, nil
	}
	data, id, err := l.Replay()
	if id == "" {
		id, _ = l.OriginalID() // a letter not replayable still names its original's id when it can
	}
	d.origin = Origin{Object: l.Object, Offset: l.Offset, ID: id, Routing: l.Routing}
	if err != nil {
		rec.Err = err
		// Its letter again is this one, with the new reason; a letter without a record is
		// written again whole, naming itself.
		if head, herr := l.heldRecord(); herr == nil {
			rec.Data, rec.Origin = head, &d.origin
			if rec.Truncated = l.Truncated || l.RecordLength > int64(len(head)); rec.Truncated {
				rec.Length = max(l.RecordLength, int64(len(head)))
				_, _ = hex.Decode(rec.SHA256[:], []byte(l.RecordSHA256))
			}
		}
		return rec, nil
	}
	rec.Origin = &d.origin
	d.id = append(d.id[:0], id...)
	rec.Data, rec.ID = data, d.id
	if l.Routing != "" {
		d.routing = append(d.routing[:0], l.Routing...)
		rec.Routing = d.routing
	}
	return rec, nil
}

// IsNotReplayable reports whether a dead letter's reason says a replay could not send it.
func IsNotReplayable(reason string) bool { return strings.HasPrefix(reason, NotReplayable) }
