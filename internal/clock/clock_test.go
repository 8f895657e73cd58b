package clock

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestFakeFiresInDeadlineOrder(t *testing.T) {
	f := NewFake(time.Unix(0, 0))
	var got []int
	f.AfterFunc(3*time.Second, func() { got = append(got, 3) })
	f.AfterFunc(time.Second, func() { got = append(got, 1) })
	stopped := f.AfterFunc(2*time.Second, func() { got = append(got, 2) })
	stopped.Stop()
	f.Advance(5 * time.Second)
	if len(got) != 2 || got[0] != 1 || got[1] != 3 {
		t.Fatalf("fired %v, want [1 3]", got)
	}
	if !f.Now().Equal(time.Unix(5, 0)) || f.Pending() != 0 {
		t.Fatalf("now %v pending %d", f.Now(), f.Pending())
	}
}

func TestDriveAdvancesWhileWaiting(t *testing.T) {
	f := NewFake(time.Unix(0, 0))
	err := f.Drive(time.Second, 10*time.Second, func() error {
		<-f.NewTimer(30 * time.Second).C()
		return nil
	})
	if err != nil || f.Now().Before(time.Unix(30, 0)) {
		t.Fatalf("err %v now %v", err, f.Now())
	}
	block := make(chan struct{})
	defer close(block)
	if err := f.Drive(time.Second, 50*time.Millisecond, func() error { <-block; return nil }); !errors.Is(err, ErrNotDone) {
		t.Fatalf("a stuck fn must give ErrNotDone, got %v", err)
	}
}

func TestSleep(t *testing.T) {
	f := NewFake(time.Unix(0, 0))
	if err := Sleep(context.Background(), f, 0); err != nil {
		t.Errorf("zero sleep: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, f, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled sleep: %v", err)
	}
	if err := f.Drive(time.Minute, 5*time.Second, func() error { return Sleep(context.Background(), f, time.Hour) }); err != nil || f.Now().Before(time.Unix(3600, 0)) {
		t.Errorf("sleep on the fake clock: %v at %v", err, f.Now())
	}
}
