package esfake

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

type action uint8

const (
	actIndex action = iota + 1
	actCreate
	actDelete
)

var actionNames = [...]string{actIndex: "index", actCreate: "create", actDelete: "delete"}

type result uint8

const (
	resCreated result = iota + 1
	resUpdated
	resDeleted
	resNotFound
)

var resultNames = [...]string{resCreated: "created", resUpdated: "updated", resDeleted: "deleted", resNotFound: "not_found"}

// item is one parsed bulk item. Byte slices point into the request body or a constant.
type item struct {
	act       action
	indexRaw  []byte // JSON string token to echo, quotes included
	indexName []byte // decoded index name
	idRaw     []byte // JSON string token, quotes included; nil when generated
	idName    []byte // decoded id; nil when generated
	gen       uint64 // generated id number when idRaw is nil
	doc       []byte // document line; nil for delete

	ix       *index
	d        *doc
	attempt  int
	badIndex bool // invalid index name

	status      int
	result      result
	version     int64
	seqNo       int64
	errType     string
	reason      string
	errExtra    []byte // appended inside the error object, starts with a comma
	causeType   string
	causeReason string
}

func (it *item) failed() bool { return it.errType != "" }

func (it *item) fail(status int, typ, reason string) {
	it.status, it.errType, it.reason = status, typ, reason
}

// bulkState is the per-request scratch space, pooled.
type bulkState struct {
	items []item
	gen   [22]byte
}

var bulkPool = sync.Pool{New: func() any { return &bulkState{items: make([]item, 0, 256)} }}

// knownBulkParams are the URL parameters Elasticsearch 8 accepts on _bulk; esfake ignores them.
var knownBulkParams = map[string]bool{
	"pipeline": true, "refresh": true, "routing": true, "timeout": true,
	"wait_for_active_shards": true, "_source": true, "_source_excludes": true,
	"_source_includes": true, "require_alias": true, "require_data_stream": true,
	"list_executed_pipelines": true, "include_source_on_error": true,
	"pretty": true, "human": true, "error_trace": true, "filter_path": true,
}

// knownMeta are the action metadata fields Elasticsearch 8 accepts besides _index and _id.
var knownMeta = map[string]bool{
	"routing": true, "op_type": true, "version": true, "version_type": true,
	"if_seq_no": true, "if_primary_term": true, "retry_on_conflict": true,
	"pipeline": true, "_source": true, "require_alias": true, "require_data_stream": true,
	"dynamic_templates": true, "list_executed_pipelines": true,
}

// bulk serves one bulk request: it writes the response body into out and returns its status.
func (s *Server) bulk(r *http.Request, req *Request, body []byte, out *[]byte, start time.Time) int {
	pathIndex := req.Index
	b := (*out)[:0]
	defer func() { *out = b }()
	reqErr := func(status int, typ, reason string) int {
		b = appendErrorBody(b, status, typ, reason, nil)
		return status
	}

	if r.URL.RawQuery != "" {
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return reqErr(400, "illegal_argument_exception", "esfake: bad query string: "+err.Error())
		}
		for k := range q {
			if !knownBulkParams[k] {
				return reqErr(400, "illegal_argument_exception",
					"request ["+r.URL.Path+"] contains unrecognized parameter: ["+k+"]")
			}
		}
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && ct != "application/x-ndjson" && ct != "application/json" {
		mt, _, _ := mime.ParseMediaType(ct)
		switch mt {
		case "application/json", "application/x-ndjson",
			"application/vnd.elasticsearch+json", "application/vnd.elasticsearch+x-ndjson":
		default:
			b = appendJSONString(append(b, `{"error":`...), "Content-Type header ["+ct+"] is not supported")
			b = append(b, `,"status":406}`...)
			return http.StatusNotAcceptable
		}
	}
	if len(body) == 0 {
		return reqErr(400, "parse_exception", "request body is required")
	}
	if body[len(body)-1] != '\n' {
		return reqErr(400, "illegal_argument_exception", `The bulk request must be terminated by a newline [\n]`)
	}

	var pathRaw, pathName []byte
	if pathIndex != "" {
		pathRaw, pathName = appendJSONString(nil, pathIndex), []byte(pathIndex)
	}

	bs := bulkPool.Get().(*bulkState)
	defer func() {
		clear(bs.items) // drop references into the body and the store
		bs.items = bs.items[:0]
		bulkPool.Put(bs)
	}()

	// Parse every line first: a malformed action line fails the whole request, as it does in
	// Elasticsearch, before anything is indexed.
	items := bs.items[:0]
	var invalid []string // validation failures, reported together like Elasticsearch does
	generated := 0
	line := 0
	for pos := 0; pos < len(body); {
		nl := bytes.IndexByte(body[pos:], '\n')
		ln := trimLine(body[pos : pos+nl])
		pos += nl + 1
		line++
		if len(ln) == 0 {
			continue
		}
		var it item
		end, msg := parseAction(ln, line, &it)
		if msg != "" {
			bs.items = items
			if !json.Valid(ln) { // Elasticsearch's JSON parser fails before the bulk parser
				return reqErr(400, "x_content_parse_exception", "["+strconv.Itoa(line)+":1] "+msg)
			}
			return reqErr(400, "illegal_argument_exception", msg)
		}
		// The scanner skips metadata values loosely; validation checks them properly.
		if !s.opts.SkipValidation && !json.Valid(ln[:end]) {
			bs.items = items
			return reqErr(400, "x_content_parse_exception",
				"["+strconv.Itoa(line)+":1] action/metadata line ["+strconv.Itoa(line)+"] is not valid JSON")
		}
		if it.act != actDelete {
			if pos >= len(body) {
				break // an action without its document at the end is ignored, as ES does
			}
			nl = bytes.IndexByte(body[pos:], '\n')
			it.doc = trimCR(body[pos : pos+nl])
			pos += nl + 1
			line++
		}
		if it.indexRaw == nil {
			if pathRaw == nil {
				invalid = append(invalid, "index is missing")
			}
			it.indexRaw, it.indexName = pathRaw, pathName
		}
		if it.act == actDelete && len(it.idName) == 0 {
			invalid = append(invalid, "id is missing")
		}
		if it.idRaw == nil {
			generated++
		}
		items = append(items, it)
	}
	bs.items = items
	if len(invalid) > 0 {
		msg := []byte("Validation Failed: ")
		for i, m := range invalid {
			msg = strconv.AppendInt(msg, int64(i+1), 10)
			msg = append(append(append(msg, ": "...), m...), ';')
		}
		return reqErr(400, "action_request_validation_exception", string(msg))
	}
	if len(items) == 0 {
		return reqErr(400, "action_request_validation_exception", "Validation Failed: 1: no requests added;")
	}
	if generated > 0 {
		next := s.idCounter.Add(uint64(generated)) - uint64(generated) + 1
		for i := range items {
			if items[i].idRaw == nil {
				items[i].gen = next
				next++
			}
		}
	}

	// Per-item checks that need no state: index name and document.
	var lastName []byte
	var lastTyp, lastReason string
	for i := range items {
		it := &items[i]
		if i == 0 || !bytes.Equal(it.indexName, lastName) {
			lastName = it.indexName
			lastTyp, lastReason = checkIndexName(string(it.indexName))
		}
		if lastTyp != "" {
			it.fail(400, lastTyp, lastReason)
			it.errExtra = indexExtra(string(it.indexName))
			it.badIndex = true
			continue
		}
		if it.idRaw != nil && len(it.idName) == 0 {
			it.fail(400, "illegal_argument_exception", "if _id is specified it must not be empty")
			continue
		}
		if it.act != actDelete {
			s.checkDoc(it)
		}
	}

	var answerAt time.Time // with a capacity: when the documents have been indexed
	if s.capacity != nil {
		answerAt = s.throttle(items, time.Now())
	}
	itemFault := s.itemFault.Load()
	if s.opts.Discard {
		s.applyDiscard(items, itemFault, req.Seq, bs)
	} else {
		s.applyStore(items, itemFault, req.Seq, bs)
	}

	// Count, then answer.
	s.st.items.Add(int64(len(items)))
	errors := false
	lastStatus, run := 0, int64(0)
	for i := range items {
		it := &items[i]
		errors = errors || it.failed()
		if it.status != lastStatus {
			s.st.countItems(lastStatus, run)
			lastStatus, run = it.status, 0
		}
		run++
	}
	s.st.countItems(lastStatus, run)
	s.waitUntil(r, answerAt)

	b = append(b, `{"took":`...)
	b = strconv.AppendInt(b, time.Since(start).Milliseconds(), 10)
	b = append(b, `,"errors":`...)
	b = strconv.AppendBool(b, errors)
	b = append(b, `,"items":[`...)
	for i := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = s.appendItem(b, &items[i], bs)
	}
	b = append(b, "]}"...)
	return http.StatusOK
}

func (s *Server) appendItem(b []byte, it *item, bs *bulkState) []byte {
	b = append(b, `{"`...)
	b = append(b, actionNames[it.act]...)
	b = append(b, `":{"_index":`...)
	b = append(b, it.indexRaw...)
	b = append(b, `,"_id":`...)
	if it.idRaw != nil {
		b = append(b, it.idRaw...)
	} else {
		b = append(b, s.genID(bs, it.gen)...)
	}
	if it.failed() {
		b = append(b, `,"status":`...)
		b = strconv.AppendInt(b, int64(it.status), 10)
		b = append(b, `,"error":{"type":`...)
		b = appendJSONString(b, it.errType)
		b = append(b, `,"reason":`...)
		b = appendJSONString(b, it.reason)
		b = append(b, it.errExtra...)
		if it.causeType != "" {
			b = append(b, `,"caused_by":`...)
			b = appendCause(b, it.causeType, it.causeReason, nil)
		}
		return append(b, "}}}"...)
	}
	b = append(b, `,"_version":`...)
	b = strconv.AppendInt(b, it.version, 10)
	b = append(b, `,"result":"`...)
	b = append(b, resultNames[it.result]...)
	b = append(b, `","_shards":{"total":1,"successful":1,"failed":0},"_seq_no":`...)
	b = strconv.AppendInt(b, it.seqNo, 10)
	b = append(b, `,"_primary_term":1,"status":`...)
	b = strconv.AppendInt(b, int64(it.status), 10)
	return append(b, "}}"...)
}

// genID renders generated id number n as a quoted 20-character URL-safe base64 id, like the
// time-based ids Elasticsearch generates. The result is valid until the next call on bs.
func (s *Server) genID(bs *bulkState, n uint64) []byte {
	var raw [15]byte
	copy(raw[:7], s.idPrefix[:])
	binary.BigEndian.PutUint64(raw[7:], n)
	bs.gen[0] = '"'
	base64.RawURLEncoding.Encode(bs.gen[1:21], raw[:])
	bs.gen[21] = '"'
	return bs.gen[:]
}

// checkDoc applies a cluster's document checks: not empty, valid JSON, an object.
func (s *Server) checkDoc(it *item) {
	if len(it.doc) == 0 {
		it.fail(400, "mapper_parsing_exception", "failed to parse, document is empty")
		return
	}
	doc := bytes.TrimLeft(it.doc, " \t\r")
	if len(doc) == 0 || doc[0] != '{' { // the content-type sniffing comes first in a cluster
		it.fail(400, "mapper_parsing_exception", "failed to parse")
		it.causeType = "not_x_content_exception"
		it.causeReason = "Compressor detection can only be called on some xcontent bytes or compressed xcontent bytes"
		return
	}
	if !s.opts.SkipValidation && !json.Valid(doc) {
		var raw json.RawMessage
		reason := "invalid JSON"
		if err := json.Unmarshal(doc, &raw); err != nil {
			reason = err.Error()
		}
		it.fail(400, "mapper_parsing_exception", "failed to parse")
		it.causeType, it.causeReason = "json_parse_exception", reason
		return
	}
	if !s.opts.SkipValidation && !utf8.Valid(doc) { // json.Valid lets invalid UTF-8 pass; a cluster does not
		it.fail(400, "mapper_parsing_exception", "failed to parse")
		it.causeType, it.causeReason = "json_parse_exception", "Invalid UTF-8 byte"
	}
}

// offer asks the item fault hook about every item that has not failed yet.
func (s *Server) offer(items []item, f *ItemFault, seq int64, bs *bulkState) {
	var fi Item
	for i := range items {
		it := &items[i]
		if it.failed() {
			continue
		}
		id := it.idName
		if it.idRaw == nil {
			g := s.genID(bs, it.gen)
			id = g[1 : len(g)-1]
		}
		fi = Item{
			Action:  actionNames[it.act],
			Index:   string(it.indexName),
			ID:      string(id),
			Attempt: it.attempt,
			Doc:     it.doc,
			Seq:     seq,
			Pos:     i,
		}
		if e := (*f)(&fi); e.Status != 0 {
			it.fail(e.Status, e.Type, e.Reason)
		}
	}
}

// applyDiscard answers every write as created and every delete as deleted, counting only.
func (s *Server) applyDiscard(items []item, f *ItemFault, seq int64, bs *bulkState) {
	if f != nil {
		s.offer(items, f, seq, bs)
	}
	var ix *index
	var ixName []byte
	for i := range items {
		it := &items[i]
		if it.failed() {
			continue
		}
		if ix == nil || !bytes.Equal(it.indexName, ixName) {
			ix, ixName = s.store.get(it.indexName), it.indexName
		}
		it.seqNo = ix.seqNo.Add(1) - 1
		if it.act == actDelete {
			it.status, it.result, it.version = 200, resDeleted, 2
			continue
		}
		ix.writes.Add(1)
		it.status, it.result, it.version = 201, resCreated, 1
	}
}

// applyStore records receipts, asks the fault hook, then indexes, under the store lock. The
// hook runs without the lock so it may call the Server.
func (s *Server) applyStore(items []item, f *ItemFault, seq int64, bs *bulkState) {
	st := &s.store
	st.mu.Lock()
	var dups int64
	for i := range items {
		it := &items[i]
		if it.badIndex { // never reaches an index
			continue
		}
		it.ix = st.lookupLocked(it.indexName, true)
		id := it.idName
		if it.idRaw == nil {
			g := s.genID(bs, it.gen)
			id = g[1 : len(g)-1]
		}
		d := it.ix.docs[string(id)]
		if d == nil {
			d = &doc{}
			it.ix.docs[string(id)] = d
		}
		d.received++
		if d.received > 1 {
			dups++
		}
		it.d, it.attempt = d, d.received
	}
	if f != nil {
		st.mu.Unlock()
		s.offer(items, f, seq, bs)
		st.mu.Lock()
	}
	for i := range items {
		it := &items[i]
		if it.failed() {
			continue
		}
		ix, d := it.ix, it.d
		switch {
		case it.act == actDelete:
			d.version++
			if d.body != nil {
				d.body = nil
				ix.live--
				it.status, it.result = 200, resDeleted
			} else {
				it.status, it.result = 404, resNotFound
			}
		case it.act == actCreate && d.body != nil:
			it.fail(409, "version_conflict_engine_exception",
				"["+string(it.idName)+"]: version conflict, document already exists (current version ["+
					strconv.FormatInt(d.version, 10)+"])")
			extra := append([]byte(`,"index_uuid":"`+indexUUID+`","shard":"0","index":`), it.indexRaw...)
			it.errExtra = extra
			continue
		default:
			d.version++
			if d.body != nil {
				it.status, it.result = 200, resUpdated
			} else {
				it.status, it.result = 201, resCreated
				ix.live++
			}
			d.body = append(d.body[:0:0], bytes.TrimSpace(it.doc)...)
			ix.writes.Add(1)
		}
		it.version = d.version
		it.seqNo = ix.seqNo.Add(1) - 1
	}
	st.mu.Unlock()
	s.st.duplicates.Add(dups)
}

func trimCR(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\r' {
		return b[:n-1]
	}
	return b
}

func trimLine(b []byte) []byte {
	return bytes.TrimRight(trimCR(b), " \t")
}

// checkIndexName applies Elasticsearch's index name rules; it returns the error type and
// reason, or "" when the name is valid.
func checkIndexName(name string) (typ, reason string) {
	const t = "invalid_index_name_exception"
	pre := "Invalid index name [" + name + "], "
	switch {
	case name == "":
		return t, pre + "must not be empty"
	case name == "." || name == "..":
		return t, pre + "must not be '.' or '..'"
	case name[0] == '_' || name[0] == '-' || name[0] == '+':
		return t, pre + "must not start with '_', '-', or '+'"
	case len(name) > 255:
		return t, pre + "index name is too long, (" + strconv.Itoa(len(name)) + " > 255)"
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c >= 'A' && c <= 'Z':
			return t, pre + "must be lowercase"
		case c == ':':
			return t, pre + "must not contain ':'"
		case c == '\\' || c == '/' || c == '*' || c == '?' || c == '"' || c == '<' || c == '>' ||
			c == '|' || c == ' ' || c == ',' || c == '#':
			return t, pre + `must not contain the following characters [ , ", *, \, <, |, ,, >, /, ?]`
		}
	}
	return "", ""
}

// parseAction reads an action line such as {"index":{"_index":"x","_id":"1"}} into it and
// returns where the action object ends, or an Elasticsearch-style message when the line is
// malformed.
func parseAction(ln []byte, line int, it *item) (end int, msg string) {
	malformed := func(want, found string) string {
		return "Malformed action/metadata line [" + strconv.Itoa(line) + "], expected " + want +
			" but found [" + found + "]"
	}
	p := scanner{b: ln}
	p.ws()
	if !p.eat('{') {
		return 0, malformed("START_OBJECT", p.found())
	}
	p.ws()
	tok, ok := p.str()
	if !ok {
		return 0, malformed("FIELD_NAME", p.found())
	}
	name := unquote(tok)
	switch string(name) {
	case "index":
		it.act = actIndex
	case "create":
		it.act = actCreate
	case "delete":
		it.act = actDelete
	case "update":
		return 0, "esfake: update actions are not supported (line [" + strconv.Itoa(line) + "])"
	default:
		return 0, "Malformed action/metadata line [" + strconv.Itoa(line) +
			"], expected one of [create, delete, index, update] but found [" + string(name) + "]"
	}
	p.ws()
	if !p.eat(':') {
		return 0, malformed("':'", p.found())
	}
	p.ws()
	if !p.eat('{') {
		return 0, malformed("START_OBJECT", p.found())
	}
	p.ws()
	if !p.eat('}') {
		for {
			p.ws()
			tok, ok := p.str()
			if !ok {
				return 0, malformed("FIELD_NAME", p.found())
			}
			key := unquote(tok)
			p.ws()
			if !p.eat(':') {
				return 0, malformed("':'", p.found())
			}
			p.ws()
			switch string(key) {
			case "_index":
				v, ok := p.str()
				if !ok {
					return 0, "esfake: [_index] on line [" + strconv.Itoa(line) + "] must be a JSON string"
				}
				it.indexRaw, it.indexName = v, unquote(v)
			case "_id":
				if v, ok := p.str(); ok {
					it.idRaw, it.idName = v, unquote(v)
					break
				}
				start := p.i // a number is taken as its text, as Elasticsearch does
				if !p.skipValue() || (p.b[start] != '-' && (p.b[start] < '0' || p.b[start] > '9')) {
					return 0, "esfake: [_id] on line [" + strconv.Itoa(line) + "] must be a string or a number"
				}
				it.idName = p.b[start:p.i]
				it.idRaw = append(append([]byte{'"'}, it.idName...), '"')
			default:
				if !knownMeta[string(key)] {
					return 0, "Action/metadata line [" + strconv.Itoa(line) + "] contains an unknown parameter [" +
						string(key) + "]"
				}
				if !p.skipValue() {
					return 0, malformed("a value", p.found())
				}
			}
			p.ws()
			if p.eat(',') {
				continue
			}
			if p.eat('}') {
				break
			}
			return 0, malformed("END_OBJECT", p.found())
		}
	}
	p.ws()
	if !p.eat('}') {
		return 0, malformed("END_OBJECT", p.found())
	}
	// Like Elasticsearch's parser, stop after the object: anything after it is ignored.
	return p.i, ""
}

// scanner is just enough of a JSON reader for action lines.
type scanner struct {
	b []byte
	i int
}

func (p *scanner) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\r', '\n':
			p.i++
		default:
			return
		}
	}
}

func (p *scanner) eat(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *scanner) found() string {
	if p.i >= len(p.b) {
		return "end of line"
	}
	rest := p.b[p.i:]
	if len(rest) > 20 {
		rest = rest[:20]
	}
	return string(rest)
}

// str reads a JSON string and returns its token, quotes included.
func (p *scanner) str() ([]byte, bool) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return nil, false
	}
	start := p.i
	for j := p.i + 1; j < len(p.b); j++ {
		switch c := p.b[j]; {
		case c == '\\':
			j++
		case c == '"':
			p.i = j + 1
			return p.b[start:p.i], true
		case c < 0x20:
			return nil, false
		}
	}
	return nil, false
}

// skipValue skips any JSON value.
func (p *scanner) skipValue() bool {
	if p.i >= len(p.b) {
		return false
	}
	switch p.b[p.i] {
	case '"':
		_, ok := p.str()
		return ok
	case '{', '[':
		depth := 0
		for p.i < len(p.b) {
			switch p.b[p.i] {
			case '"':
				if _, ok := p.str(); !ok {
					return false
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					p.i++
					return true
				}
			}
			p.i++
		}
		return false
	}
	start := p.i // a number, true, false or null
	for p.i < len(p.b) {
		c := p.b[p.i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '.' || c == '+' || c == '-') {
			break
		}
		p.i++
	}
	return p.i > start
}

// unquote decodes a JSON string token; it copies only when the token has escapes.
func unquote(tok []byte) []byte {
	inner := tok[1 : len(tok)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return inner
	}
	var s string
	if err := json.Unmarshal(tok, &s); err != nil {
		return inner
	}
	return []byte(s)
}
