package ledger

import (
	"encoding/json"
	"fmt"
	"testing"
)

func sampleBatch(n int) *Batch {
	b := &Batch{NewAccounts: []*Account{{ID: "acc_1", Currency: "USD", Code: "c", Timestamp: 1, Metadata: map[string]string{"k": "v"}}}}
	for i := range n {
		t := &Transfer{
			ID: fmt.Sprintf("tr_%08d", i), DebitAccountID: "acc_debit_123456", CreditAccountID: "acc_credit_123456",
			Amount: int64(i + 1), Currency: "USD", Code: "purchase", Status: StatusPosted, Timestamp: Timestamp(1_760_000_000_000_000_000 + i),
		}
		switch i % 4 {
		case 1:
			t.Pending, t.Status, t.TimeoutSeconds, t.ExpiresAt = true, StatusPending, 60, t.Timestamp+60e9
		case 2:
			t.PendingID, t.Status, t.Metadata = "p<1>", StatusVoided, map[string]string{"note": "café \u2028 \"q\""}
		case 3:
			t.PendingID, t.Status = "p2", StatusExpired
		}
		b.Transfers = append(b.Transfers, t)
	}
	return b
}

// TestEventEncoding checks the hand-written encoding against encoding/json, which is how the
// API renders accounts and transfers.
func TestEventEncoding(t *testing.T) {
	b := sampleBatch(8)
	encodeEvents(b, nil)
	if len(b.Events) != 9 {
		t.Fatalf("%d events, want 9", len(b.Events))
	}
	for i, ev := range b.Events {
		var env struct {
			SchemaVersion int             `json:"schema_version"`
			Type          string          `json:"type"`
			ID            string          `json:"id"`
			OccurredAt    Timestamp       `json:"occurred_at"`
			Data          json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(ev.Payload, &env); err != nil {
			t.Fatalf("event %d: %v\n%s", i, err, ev.Payload)
		}
		var obj any = b.NewAccounts[0]
		subj, ts := SubjectAccountCreated, b.NewAccounts[0].Timestamp
		if i > 0 {
			obj, subj, ts = b.Transfers[i-1], TransferSubject(b.Transfers[i-1]), b.Transfers[i-1].Timestamp
		}
		want, _ := json.Marshal(obj)
		if string(env.Data) != string(want) {
			t.Fatalf("event %d data:\n got %s\nwant %s", i, env.Data, want)
		}
		if env.SchemaVersion != EventSchemaVersion || env.Type != subj || ev.Subject != subj || env.ID != ev.ID || ev.ID != EventID(ts) || env.OccurredAt != ts {
			t.Fatalf("event %d envelope: %s", i, ev.Payload)
		}
	}
	for i, want := range []string{SubjectTransferCreated, SubjectTransferCreated, SubjectTransferVoided, SubjectTransferExpired} {
		if got := b.Events[i+1].Subject; got != want {
			t.Fatalf("transfer %d: subject %s, want %s", i, got, want)
		}
	}
	if EventID(5) >= EventID(40) || len(EventID(5)) != len(EventID(1<<62)) {
		t.Fatal("event ids do not sort in time order")
	}
}

func BenchmarkEncodeEvents(b *testing.B) {
	batch := sampleBatch(2000)
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = encodeEvents(batch, buf)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*2001), "ns/event")
}
