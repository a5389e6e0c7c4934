package main

import (
	"bytes"
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/fincore/fincore/bank"
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
	if err := exec.Command(binPath, "bank-sim", "--notify-url", "http://127.0.0.1:1/x", "--secret", "").Run(); err == nil {
		t.Error("--notify-url without a secret was accepted")
	}
	if err := exec.Command(binPath, "bank-sim", "--addr", freeAddr(t), "--decline", "1.5").Run(); err == nil {
		t.Error("a decline rate of 1.5 was accepted")
	}
}
