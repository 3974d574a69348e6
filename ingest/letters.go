package ingest

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/sluicehq/sluice/ingest/s3source"
)

// FormatDeadLetter reads dead letters (NDJSON, as DeadLetter.AppendJSON writes them: an S3
// target's objects, a file target) and yields the record each one holds, to replay them: the
// record as it was (record, or record_base64 byte for byte), with the _id its original got by
// default (DocumentID of the letter's object and offset), so that replaying a letter twice, or
// after part of a replay failed, writes one document. With an id field the record's own value
// is the id, as in the original run. A letter holding only the head of its record (truncated:
// record_length is more than it holds) is not replayable: it is dead-lettered again, never
// sent cut short.
const FormatDeadLetter = "deadletter"

// NotReplayable starts the reason of a letter that a replay cannot send (see
// FormatDeadLetter); replay counts them apart from the records that fail again.
const NotReplayable = "not replayable"

// Letter is a dead letter read back, with the fields a replay and a listing need.
type Letter struct {
	Object       string  `json:"object"`
	Offset       int64   `json:"offset"`
	Index        string  `json:"index"`
	Status       int     `json:"status"`
	ErrorType    string  `json:"error_type"`
	Reason       string  `json:"reason"`
	Truncated    bool    `json:"truncated"`
	RecordLength int64   `json:"record_length"`
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
	var rec []byte
	switch {
	case l.Record != nil:
		rec = []byte(*l.Record)
	case l.RecordBase64 != nil:
		rec = l.RecordBase64
	default:
		return nil, fmt.Errorf("%s: the letter holds no record", NotReplayable)
	}
	if l.Truncated || l.RecordLength > int64(len(rec)) {
		return nil, fmt.Errorf("%s: the letter holds %d of the record's %d bytes", NotReplayable, len(rec), l.RecordLength)
	}
	return rec, nil
}

// OriginalID is the _id the record got by default in the run that dead-lettered it.
func (l *Letter) OriginalID() (string, error) {
	bucket, key, err := s3source.ParseURI(l.Object)
	if err != nil || key == "" {
		return "", fmt.Errorf("%s: the letter names no object (%q)", NotReplayable, l.Object)
	}
	return DocumentID(bucket, key, l.Offset), nil
}

// letterDecoder yields the records of the dead letters an NDJSON decoder reads.
type letterDecoder struct {
	*ndjsonDecoder
	id []byte
}

func (d *letterDecoder) Next() (Record, error) {
	rec, err := d.ndjsonDecoder.Next()
	if err != nil || rec.Err != nil {
		return rec, err
	}
	l, err := ParseLetter(rec.Data)
	if err != nil {
		rec.Err = fmt.Errorf("%s: %w", NotReplayable, err)
		return rec, nil
	}
	data, err := l.Original()
	if err == nil {
		var id string
		id, err = l.OriginalID()
		d.id = append(d.id[:0], id...)
	}
	if err != nil {
		rec.Err = err
		return rec, nil
	}
	rec.Data, rec.ID = data, d.id
	return rec, nil
}

// IsNotReplayable reports whether a dead letter's reason says a replay could not send it.
func IsNotReplayable(reason string) bool { return strings.HasPrefix(reason, NotReplayable) }
