package main

import (
	"bytes"
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/fincore/fincore/bank"
	"github.com/fincore/fincore/bank/iso8583"
	"github.com/fincore/fincore/bank/sim"
)

func TestBankSimCommand(t *testing.T) {
	addr := freeAddr(t)
	var logs bytes.Buffer
	cmd := exec.Command(binPath, "bank-sim", "--addr", addr, "--median", "1ms", "--p99", "5ms",
		"--decline", "0", "--insufficient", "0", "--system-error", "0", "--drop", "0", "--lost-answer", "0", "--async", "0")
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	ch := sim.NewHTTPChannel("sim", bank.Capabilities{Currencies: []string{"CNY"}}, "http://"+addr)
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := ch.Pay(context.Background(), bank.PayRequest{PaymentID: "p1", Amount: 100, Currency: "CNY"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Status == bank.Succeeded {
			break
		}
		if res.Code != bank.CodeChannelUnavailable || time.Now().After(deadline) {
			t.Fatalf("Pay = %+v; logs:\n%s", res, logs.String())
		}
		time.Sleep(50 * time.Millisecond) // not listening yet
	}
	if err := exec.Command(binPath, "bank-sim", "--addr", freeAddr(t), "--iso-addr", freeAddr(t), "--async", "0.5").Run(); err == nil {
		t.Error("an ISO host with asynchronous answers was accepted")
	}
	if err := exec.Command(binPath, "bank-sim", "--notify-url", "http://127.0.0.1:1/x", "--secret", "").Run(); err == nil {
		t.Error("--notify-url without a secret was accepted")
	}
	if err := exec.Command(binPath, "bank-sim", "--addr", freeAddr(t), "--decline", "1.5").Run(); err == nil {
		t.Error("a decline rate of 1.5 was accepted")
	}
}

func TestBankSimISOHost(t *testing.T) {
	addr, isoAddr := freeAddr(t), freeAddr(t)
	cmd := exec.Command(binPath, "bank-sim", "--addr", addr, "--iso-addr", isoAddr, "--median", "1ms", "--p99", "2ms",
		"--decline", "0", "--insufficient", "0", "--system-error", "0", "--drop", "0", "--lost-answer", "0", "--async", "0")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	ch, err := iso8583.New(iso8583.Options{Code: "iso", Caps: bank.Capabilities{Currencies: []string{"CNY"}}, Addr: isoAddr, EchoInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, _ := ch.Pay(context.Background(), bank.PayRequest{PaymentID: "p1", Amount: 100, Currency: "CNY", Card: bank.Card{PAN: "6222020200112233445"}})
		if res.Status == bank.Succeeded {
			break
		}
		if res.Code != bank.CodeChannelUnavailable || time.Now().After(deadline) {
			t.Fatalf("Pay over ISO 8583 = %+v", res)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The same books over HTTP: the statement shows the ISO payment.
	lines, err := sim.NewHTTPChannel("h", bank.Capabilities{Currencies: []string{"CNY"}}, "http://"+addr).Statement(context.Background(), time.Now().UTC())
	if err != nil || len(lines) != 1 || lines[0].ID != "p1" {
		t.Fatalf("statement %+v, %v", lines, err)
	}
}

func TestParseRates(t *testing.T) {
	got, err := parseRates("AAA=0.1, BBB=1")
	if err != nil || len(got) != 2 || got["AAA"] != 0.1 || got["BBB"] != 1 {
		t.Fatalf("parseRates = %v, %v", got, err)
	}
	if got, err := parseRates(""); got != nil || err != nil {
		t.Fatalf("empty: %v, %v", got, err)
	}
	for _, bad := range []string{"AAA", "AAA=x", "=0.1"} {
		if _, err := parseRates(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
