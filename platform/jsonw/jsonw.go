// Package jsonw writes JSON pieces without reflection, byte for byte as encoding/json would,
// for the hot paths that build their JSON by hand (ledger events, payment records, the risk
// decision log).
package jsonw

import (
	"encoding/json"
	"unicode/utf8"
)

// AppendString appends s as a JSON string exactly as encoding/json writes it: printable ASCII
// with nothing to escape directly, anything else through encoding/json (which escapes <, >
// and &, replaces invalid UTF-8 and escapes U+2028 and U+2029).
func AppendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
