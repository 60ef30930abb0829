package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkDueMail100k finds the 100 due mails among 100,000 stored: the
// other 99,900 wait for a retry an hour away (a mail server that has been
// down for a while). The due ones are the newest, as freshly queued mail
// is; the sender asks for a batch of 100.
func BenchmarkDueMail100k(b *testing.B) {
	const stored, due = 100_000, 100
	db, _ := openTest(b)
	ctx := context.Background()
	now := time.Now()
	later := now.Add(time.Hour)
	batch := make([]Mail, 0, 1000)
	for i := range stored {
		m := Mail{RunID: fmt.Sprint(i + 1), To: []string{"team@app.example"}, Subject: fmt.Sprintf("[cccp] app%d: FAILED at test", i),
			Text: "the lines that explain the failure\n" + fmt.Sprint(i)}
		if i < stored-due {
			m.NextAttempt = later
		}
		batch = append(batch, m)
		if len(batch) == cap(batch) {
			if err := db.QueueMail(ctx, batch, nil); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	b.ResetTimer()
	for b.Loop() {
		ms, err := db.DueMail(ctx, now, due)
		if err != nil || len(ms) != due {
			b.Fatal(len(ms), err)
		}
	}
}
