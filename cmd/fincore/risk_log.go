package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/fincore/fincore/risk"
)

// loggedDecision is one line of fincore risk decisions.
type loggedDecision struct {
	EventID   string          `json:"event_id"`
	RuleSet   string          `json:"ruleset"`
	Version   int             `json:"ruleset_version"`
	Shadow    bool            `json:"shadow"`
	Decision  string          `json:"decision"`
	Score     int             `json:"score"`
	DecidedAt time.Time       `json:"decided_at"`
	Body      json.RawMessage `json:"body"`
}

// cmdRiskDecisions prints the logged decisions of events, for audit: one JSON object per
// decision (active and shadow), its body — reasons, features, models, errors — as JSON.
func cmdRiskDecisions(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("risk decisions", flag.ContinueOnError)
	events := fs.String("event", "", "event ids, comma-separated")
	var sf storeFlags
	sf.register(fs, false)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *events == "" {
		return fmt.Errorf("--event is required")
	}
	ctx := context.Background()
	st, closeStore, err := openRiskStore(ctx, &sf)
	if err != nil {
		return err
	}
	defer closeStore()
	ds, err := risk.NewLogReader(st).Decisions(ctx, strings.Split(*events, ","))
	if err != nil {
		return err
	}
	enc := json.NewEncoder(out)
	for _, d := range ds {
		if err := enc.Encode(loggedDecision{d.EventID, d.RuleSet, d.Version, d.Shadow, d.Decision, d.Score, d.At, d.Body}); err != nil {
			return err
		}
	}
	return nil
}

// openRiskStore opens the storage of sf (without migrating it) and returns its risk store
// and a function that closes the storage.
func openRiskStore(ctx context.Context, sf *storeFlags) (risk.Store, func() error, error) {
	st, err := sf.openLedgerStore(ctx, false)
	if err != nil {
		return nil, nil, err
	}
	p, ok := st.(risk.Provider)
	if !ok {
		st.Close()
		return nil, nil, fmt.Errorf("storage %T has no risk store", st)
	}
	return p.Risk(), st.Close, nil
}
