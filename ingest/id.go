package ingest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
)

// idHasher makes the default document id of a record: a hash of the object's bucket and key,
// then the record's offset, "<16 base64url characters>.<offset in base 36>". Replaying a
// record after a resume overwrites the same document. The hash (96 bits of SHA-256) is
// computed once per chunk, so an id costs a few nanoseconds, and ids of one object share a
// prefix, which the index's terms dictionary compresses well.
type idHasher struct {
	prefix []byte // hash + '.'
}

func newIDHasher(bucket, key string) *idHasher {
	h := sha256.New()
	h.Write([]byte(bucket))
	h.Write([]byte{0})
	h.Write([]byte(key))
	sum := h.Sum(nil)
	p := base64.RawURLEncoding.AppendEncode(nil, sum[:12])
	return &idHasher{prefix: append(p, '.')}
}

// DocumentID returns the default _id of the record at offset of bucket/key.
func DocumentID(bucket, key string, offset int64) string {
	return string(newIDHasher(bucket, key).appendID(nil, offset))
}

func (h *idHasher) appendID(dst []byte, offset int64) []byte {
	return strconv.AppendInt(append(dst, h.prefix...), offset, 36)
}

// MaxIDBytes is Elasticsearch's limit on an _id: a longer one fails its whole _bulk request
// (a request-level 400), so such a record is dead-lettered without being sent.
const MaxIDBytes = 512

// idFieldValue is the _id the id field of doc gives, or why it gives none.
func idFieldValue(doc []byte, field string) ([]byte, error) {
	id, err := fieldValue(doc, field)
	if err != nil {
		return nil, fmt.Errorf("id field: %w", err)
	}
	if len(id) > MaxIDBytes {
		return nil, fmt.Errorf("id field %q: value of %d bytes is longer than Elasticsearch's limit of %d bytes", field, len(id), MaxIDBytes)
	}
	return id, nil
}

// fieldValue finds the top-level field name in the JSON object doc without decoding the rest
// and returns its value as an id: a string's content, or a number's literal. It is a scanner,
// not a validator: on malformed input it reports an error and Elasticsearch has the final word
// on the document.
func fieldValue(doc []byte, name string) ([]byte, error) {
	i := skipSpace(doc, 0)
	if i >= len(doc) || doc[i] != '{' {
		return nil, fmt.Errorf("not a JSON object")
	}
	i++
	for {
		i = skipSpace(doc, i)
		if i >= len(doc) {
			return nil, fmt.Errorf("truncated JSON object")
		}
		if doc[i] == '}' {
			return nil, fmt.Errorf("no field %q", name)
		}
		if doc[i] == ',' {
			i++
			continue
		}
		if doc[i] != '"' {
			return nil, fmt.Errorf("malformed JSON at byte %d", i)
		}
		kEnd, escaped, err := scanString(doc, i)
		if err != nil {
			return nil, err
		}
		key := doc[i+1 : kEnd-1]
		match := false
		if escaped {
			var s string
			if json.Unmarshal(doc[i:kEnd], &s) == nil {
				match = s == name
			}
		} else {
			match = string(key) == name
		}
		i = skipSpace(doc, kEnd)
		if i >= len(doc) || doc[i] != ':' {
			return nil, fmt.Errorf("malformed JSON at byte %d", i)
		}
		i = skipSpace(doc, i+1)
		vEnd, err := scanValue(doc, i)
		if err != nil {
			return nil, err
		}
		if match {
			v := doc[i:vEnd]
			switch {
			case len(v) > 0 && v[0] == '"':
				if _, esc, _ := scanString(v, 0); esc {
					var s string
					if err := json.Unmarshal(v, &s); err != nil {
						return nil, fmt.Errorf("field %q: %w", name, err)
					}
					return []byte(s), nil
				}
				if len(v) == 2 {
					return nil, fmt.Errorf("field %q is empty", name)
				}
				return v[1 : len(v)-1], nil
			case len(v) > 0 && (v[0] == '-' || (v[0] >= '0' && v[0] <= '9')):
				return v, nil
			default:
				return nil, fmt.Errorf("field %q is not a string or a number", name)
			}
		}
		i = vEnd
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanString returns the index just past the string starting at b[i] == '"'.
func scanString(b []byte, i int) (end int, escaped bool, err error) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			return j + 1, escaped, nil
		}
	}
	return 0, false, fmt.Errorf("unterminated string")
}

// scanValue returns the index just past the JSON value starting at b[i].
func scanValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, fmt.Errorf("missing value")
	}
	switch b[i] {
	case '"':
		end, _, err := scanString(b, i)
		return end, err
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, _, err := scanString(b, j)
				if err != nil {
					return 0, err
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, fmt.Errorf("unterminated object or array")
	default:
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
			j++
		}
		if j == i {
			return 0, fmt.Errorf("missing value")
		}
		return j, nil
	}
}
