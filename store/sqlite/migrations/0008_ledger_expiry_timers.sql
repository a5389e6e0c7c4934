-- Ledger expiry on durable timers (docs/adr/0012-ledger-expiry-on-timers.md). From this
-- version on, the ledger's Commit writes one timer per pending transfer with a timeout, in
-- the same transaction: id 'ledger.expire:<transfer id>', handler 'ledger.expire', due at
-- the transfer's expires_at, payload the transfer id (ledger.ExpiryTimer). This backfills
-- the same timers for the pending transfers written before, so that none is left without.
INSERT INTO timers (id, handler, fire_at, payload, next_at)
SELECT 'ledger.expire:' || id, 'ledger.expire', expires_at, CAST(id AS BLOB), expires_at
FROM transfers
WHERE status = 'pending' AND expires_at > 0
ON CONFLICT (id) DO NOTHING;
