package ingest

import (
	"bytes"
	"fmt"
	"testing"
)

// pieceOf returns a request of one block holding documents first..first+n-1 of object 0, as
// the producer queues them, charged to budget.
func pieceOf(t *testing.T, budget *Budget, first, n int) *request {
	t.Helper()
	r := newRequest(budget)
	if !budget.TryAcquire(blockBytes) {
		t.Fatal("budget too small")
	}
	r.addBlock(blockBytes)
	for i := first; i < first+n; i++ {
		action := fmt.Appendf(nil, "{\"index\":{\"_id\":\"%d\"}}\n", i)
		r.addDoc(0, int64(100*i), int64(100*(i+1)), action, fmt.Appendf(nil, `{"n":%d}`, i))
	}
	return r
}

func body(r *request) []byte { return bytes.Join(r.wireOf(allIndexes(len(r.items)), nil), nil) }

// TestJoinHeadFillsARequestWithoutCopying: a queued request that does not fit is split at a
// document boundary; the two parts send exactly the documents of the whole, share its block,
// and give its charge back once, when the second of them lets go.
func TestJoinHeadFillsARequestWithoutCopying(t *testing.T) {
	for _, clean := range []bool{true, false} {
		budget := NewBudget(64 * blockBytes)
		cur, piece := pieceOf(t, budget, 0, 6), pieceOf(t, budget, 6, 10)
		whole := append(body(cur), body(piece)...)
		lim := Limits{MaxOps: 10, MaxBytes: 1 << 20}
		if cur.fits(piece, lim) {
			t.Fatal("the piece fits: nothing to split")
		}
		k := cur.headFits(piece, lim)
		if k != 4 {
			t.Fatalf("headFits %d documents, want 4 (MaxOps 10 - 6)", k)
		}
		pieceBlock := &piece.blocks[0][0]
		cur.joinHead(piece, k)
		if len(cur.items) != 10 || len(piece.items) != 6 || !cur.full(lim) {
			t.Fatalf("after the split: %d and %d documents", len(cur.items), len(piece.items))
		}
		if got := append(body(cur), body(piece)...); !bytes.Equal(got, whole) {
			t.Fatalf("the parts send\n%s\nwant\n%s", got, whole)
		}
		if &cur.blocks[1][0] != pieceBlock || string(piece.doc(0)) != `{"n":10}` || cur.end != 1000 || cur.obj != 0 {
			t.Fatalf("head: block copied or wrong end %d; rest starts with %s", cur.end, piece.doc(0))
		}
		if used := budget.Used(); used != 2*blockBytes {
			t.Fatalf("budget %d after the split, want the 2 blocks", used)
		}
		if clean {
			cur.free()
		} else {
			cur.release() // a failed send: the block must not go back to the pool
		}
		if used := budget.Used(); used != blockBytes {
			t.Fatalf("budget %d after the head let go, want the shared block still charged", used)
		}
		if string(piece.doc(5)) != `{"n":15}` {
			t.Fatalf("rest after the head let go: %s", piece.doc(5))
		}
		piece.free()
		if used := budget.Used(); used != 0 {
			t.Fatalf("budget %d after both let go, want 0", used)
		}
	}
}

// TestHeadFitsBytesAndWhatCannotBeSplit: the byte limit bounds the head too, and a request
// with refused records is not split (they would have to go with the part that covers them).
func TestHeadFitsBytesAndWhatCannotBeSplit(t *testing.T) {
	budget := NewBudget(64 * blockBytes)
	cur, piece := pieceOf(t, budget, 0, 2), pieceOf(t, budget, 2, 10)
	docBytes := piece.items[0].end // every document here has the same size
	lim := Limits{MaxOps: 1000, MaxBytes: int64(cur.size + 3*docBytes + docBytes/2)}
	if k := cur.headFits(piece, lim); k != 3 {
		t.Fatalf("headFits %d, want the 3 whole documents that fit in the bytes left", k)
	}
	piece.rejects = append(piece.rejects, DeadLetter{Offset: 250})
	if k := cur.headFits(piece, lim); k != 0 {
		t.Fatalf("headFits %d for a request with a refused record, want 0", k)
	}
	piece.rejects = piece.rejects[:0]
	cur.free()
	piece.free()
}
