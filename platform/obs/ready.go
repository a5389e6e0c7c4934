package obs

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/httpapi"
	"github.com/fincore/fincore/ledger"
)

// readyTimeout bounds all the checks of one readiness probe: a storage that takes longer to
// answer a trivial read is not ready to take traffic.
const readyTimeout = 2 * time.Second

// Check is one readiness condition: it returns nil when the condition holds. An
// *apierror.Error is shown to the prober as is; any other error is logged and answered as
// unavailable, so that no internal detail leaves the process.
type Check func(ctx context.Context) error

// LedgerReady holds while eng can write (it is open, holds the writer lease if it runs with
// one, and has not been fenced by a newer writer) and st answers a cheap read (the journal
// head). A standby is therefore not ready: load balancers send traffic to the writer.
func LedgerReady(eng *ledger.Engine, st ledger.Store) Check {
	return func(ctx context.Context) error {
		if err := eng.WriteErr(); err != nil {
			// not_leader for a standby or a fenced writer, unavailable once closed: both 503.
			return err
		}
		if _, err := st.Head(ctx); err != nil {
			return fmt.Errorf("ledger storage read: %w", err)
		}
		return nil
	}
}

// Ready returns the GET /readyz handler: 200 {"status":"ready"} when every check passes
// within two seconds, else 503 (with Retry-After) in the API's error envelope, written by api.
// Register it with api.Handle so that probes get request ids and logs like any request.
func Ready(api *httpapi.Server, log *slog.Logger, checks ...Check) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		for _, check := range checks {
			err := check(ctx)
			if err == nil {
				continue
			}
			e := apierror.As(err)
			if e == nil || e.Status() != http.StatusServiceUnavailable {
				log.WarnContext(ctx, "not ready", "err", err, "request_id", httpapi.RequestID(ctx))
				e = apierror.Newf(apierror.Unavailable, "", "A dependency of this instance (storage) is not answering.")
			}
			api.Error(w, r, e)
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}
