// Package iso8583 is a bank channel speaking ISO 8583 (1987, ASCII) over TCP, and a simulated
// ISO 8583 bank host in front of a simulated bank (bank/sim).
//
// Messages: 0200/0210 financial requests (purchase, processing code 000000; refund, 200000),
// 0400/0410 reversals, sent when a request times out, 0800/0810 network management (echo,
// code 301). Frames carry a two-byte big-endian length header. Requests and responses on one
// connection are matched by the system trace audit number (field 11), so many requests are in
// flight at once.
//
// fincore's payment or refund id travels in field 48 ("PID:<payment id>" or
// "RID:<refund id>;PID:<payment id>"); the host's reference comes back in field 37.
package iso8583

import (
	"encoding/binary"
	"fmt"
	"io"
	"maps"
	"strings"

	moov "github.com/moov-io/iso8583"
	"github.com/moov-io/iso8583/encoding"
	mfield "github.com/moov-io/iso8583/field"
	"github.com/moov-io/iso8583/prefix"
	"github.com/moov-io/iso8583/specs"

	"github.com/fincore/fincore/bank"
)

// Spec is the message specification: ISO 8583:1987 with ASCII encoding, with the processing
// code (field 3) kept as six characters and the network management code (field 70) added.
var Spec = buildSpec()

func buildSpec() *moov.MessageSpec {
	fields := make(map[int]mfield.Field, len(specs.Spec87ASCII.Fields)+1)
	maps.Copy(fields, specs.Spec87ASCII.Fields)
	fixed := func(n int, desc string) mfield.Field {
		return mfield.NewString(&mfield.Spec{Length: n, Description: desc, Enc: encoding.ASCII, Pref: prefix.ASCII.Fixed})
	}
	fields[3] = fixed(6, "Processing Code")
	fields[70] = fixed(3, "Network Management Information Code")
	return &moov.MessageSpec{Name: "ISO 8583:1987 ASCII (fincore)", Fields: fields}
}

// MaxFrame bounds a frame's length; longer frames are refused (the connection is closed).
const MaxFrame = 8192

// The message type indicators used.
const (
	MTIFinancial         = "0200"
	MTIFinancialResponse = "0210"
	MTIReversal          = "0400"
	MTIReversalRepeat    = "0401"
	MTIReversalResponse  = "0410"
	MTINetwork           = "0800"
	MTINetworkResponse   = "0810"
)

// Processing codes (field 3) and the network management code for echo (field 70).
const (
	ProcPurchase = "000000"
	ProcRefund   = "200000"
	NetEcho      = "301"
)

// The response codes (field 39) the host sends, and their unified meaning.
var responseCodes = map[string]bank.Code{
	"00": bank.CodeApproved,
	"05": bank.CodeDeclined,
	"13": bank.CodeInvalidAmount,
	"14": bank.CodeCardInvalid,
	"25": bank.CodeNotFound,
	"30": bank.CodeInvalidAmount, // format error
	"51": bank.CodeInsufficientFunds,
	"54": bank.CodeCardExpired,
	"59": bank.CodeSuspectedFraud,
	"61": bank.CodeLimitExceeded,
	"91": bank.CodeBankSystemError, // issuer or switch inoperative: not charged
	"94": bank.CodeDuplicate,
	"96": bank.CodeBankSystemError,
}

// Map maps a field 39 response code onto the unified table; unmapped codes read as unknown
// outcomes.
func Map(code string) bank.Code {
	if c, ok := responseCodes[code]; ok {
		return c
	}
	return bank.Code("iso_" + code)
}

// WriteFrame packs msg and writes it with its length header.
func WriteFrame(w io.Writer, msg *moov.Message) error {
	packed, err := msg.Pack()
	if err != nil {
		return fmt.Errorf("iso8583: pack: %w", err)
	}
	if len(packed) > MaxFrame {
		return fmt.Errorf("iso8583: message of %d bytes exceeds %d", len(packed), MaxFrame)
	}
	buf := make([]byte, 2+len(packed))
	binary.BigEndian.PutUint16(buf, uint16(len(packed)))
	copy(buf[2:], packed)
	_, err = w.Write(buf)
	return err
}

// ReadFrame reads one framed message.
func ReadFrame(r io.Reader) (*moov.Message, error) {
	var head [2]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(head[:]))
	if n == 0 || n > MaxFrame {
		return nil, fmt.Errorf("iso8583: frame length %d outside 1..%d", n, MaxFrame)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	msg := moov.NewMessage(Spec)
	if err := msg.Unpack(buf); err != nil {
		return nil, fmt.Errorf("iso8583: unpack: %w", err)
	}
	return msg, nil
}

// field returns a field's string value, "" when absent.
func field(m *moov.Message, id int) string {
	s, err := m.GetString(id)
	if err != nil {
		return ""
	}
	return s
}

// ids parses field 48 into the refund and payment ids.
func ids(f48 string) (refundID, paymentID string) {
	for _, part := range strings.Split(f48, ";") {
		k, v, _ := strings.Cut(part, ":")
		switch k {
		case "PID":
			paymentID = v
		case "RID":
			refundID = v
		}
	}
	return refundID, paymentID
}
