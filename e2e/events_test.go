package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/batonha/baton/internal/hostevents"
	"github.com/batonha/baton/internal/hostevents/hosteventstest"
	"github.com/batonha/baton/internal/lab"
)

func scheduledReboot(id string) hostevents.AzureEvent {
	return hostevents.AzureEvent{EventID: id, EventType: "Reboot", ResourceType: "VirtualMachine", Resources: []string{"nva-a"},
		EventStatus: "Scheduled", NotBefore: time.Now().Add(15 * time.Minute).UTC().Format(time.RFC1123), EventSource: "Platform", DurationInSeconds: -1}
}

// eventStatus reads subsystems.events of node i.
func (e *env) eventStatus(i int) hostevents.Status {
	st, err := e.status(i)
	if err != nil {
		return hostevents.Status{}
	}
	raw, _ := json.Marshal(st.Subsystems["events"])
	var es hostevents.Status
	_ = json.Unmarshal(raw, &es)
	return es
}

// The real daemon drains for an Azure Scheduled Event on its metadata
// endpoint: the active hands over, enters MAINTENANCE and acknowledges;
// the event over, it resumes as standby. With the peer dead the next event
// is neither drained nor acknowledged until the peer is back.
func TestScheduledEventDrainsTheActive(t *testing.T) {
	fx := hosteventstest.NewAzure("nva-a")
	e := newEnv(t, [2]lab.NodeOptions{{}, {}}, [2]string{"", ""})
	ln, err := e.pair.A.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: fx, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	appendConfig(t, e.nodes[0].Config, fmt.Sprintf("events:\n  cloud: azure\n  endpoint: \"http://%s\"\n  poll: 200ms\n  resume: true\n", ln.Addr()))

	e.start(0)
	e.start(1)
	e.roles("ACTIVE", "STANDBY", 10*time.Second)

	fx.Post(scheduledReboot("E1"))
	e.roles("MAINTENANCE", "ACTIVE", 5*time.Second)
	e.eventually("the event acknowledged", 2*time.Second, func() bool { return slices.Equal(fx.Acks(), []string{"E1"}) })

	fx.Complete("E1")
	e.roles("STANDBY", "ACTIVE", 5*time.Second)

	// Failback, then the peer dies: nva-a takes over after the loss
	// tolerance; an event now finds no healthy standby.
	e.kill(1, syscall.SIGKILL)
	e.roles("ACTIVE", "DEAD", 5*time.Second)
	fx.Post(scheduledReboot("E2"))
	e.eventually("the event shown as waiting", 3*time.Second, func() bool {
		es := e.eventStatus(0)
		return len(es.Events) == 1 && es.Events[0].Waiting != ""
	})
	if e.role(0) != "ACTIVE" || len(fx.Acks()) != 1 {
		t.Fatalf("with the peer dead: role %s, acks %v", e.role(0), fx.Acks())
	}
	// The peer is back: the drain happens.
	e.start(1)
	e.roles("MAINTENANCE", "ACTIVE", 10*time.Second)
	e.eventually("the second event acknowledged", 2*time.Second, func() bool { return slices.Equal(fx.Acks(), []string{"E1", "E2"}) })
}

func appendConfig(t *testing.T, path, yaml string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(yaml); err != nil {
		t.Fatal(err)
	}
}
