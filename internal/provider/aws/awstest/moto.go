package awstest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/batonha/baton/internal/lab/labtest"
)

// StartMoto starts a moto_server on a free loopback port for the test and
// returns its URL; t.Cleanup stops it by PID. It skips when moto_server is
// not installed, but fails instead when CI=true.
func StartMoto(t testing.TB) string {
	t.Helper()
	bin := labtest.RequireTool(t, "moto_server")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting moto_server: %v", err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		if p, err := os.FindProcess(pid); err == nil {
			p.Kill()
		}
		cmd.Wait()
	})
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			return url
		}
		if time.Now().After(deadline) {
			t.Fatalf("moto_server on %s did not answer within 30s: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond) // polling an external process's readiness
	}
}

// MotoClient returns an EC2 client for a moto_server URL with static test
// credentials and no SDK retries (moto answers unimplemented calls with
// 500, which the SDK would otherwise retry).
func MotoClient(url string) *ec2.Client {
	return ec2.New(ec2.Options{
		Region:           "us-east-1",
		BaseEndpoint:     awssdk.String(url),
		Credentials:      credentials.NewStaticCredentialsProvider("test", "test", ""),
		RetryMaxAttempts: 1,
	})
}

// Pair is a VPC with one subnet and two ENIs (local and peer), built in moto.
type Pair struct {
	VPC, Subnet       string
	LocalENI, PeerENI string
	LocalIP, PeerIP   string
}

// BuildPair creates the VPC, subnet and ENIs of a pair of appliances.
func BuildPair(ctx context.Context, t testing.TB, c *ec2.Client) Pair {
	t.Helper()
	vpc, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: awssdk.String("10.0.0.0/16")})
	if err != nil {
		t.Fatalf("CreateVpc: %v", err)
	}
	p := Pair{VPC: *vpc.Vpc.VpcId}
	sn, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: awssdk.String("10.0.1.0/24")})
	if err != nil {
		t.Fatalf("CreateSubnet: %v", err)
	}
	p.Subnet = *sn.Subnet.SubnetId
	mk := func(ip string) string {
		out, err := c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: sn.Subnet.SubnetId, PrivateIpAddress: awssdk.String(ip)})
		if err != nil {
			t.Fatalf("CreateNetworkInterface %s: %v", ip, err)
		}
		return *out.NetworkInterface.NetworkInterfaceId
	}
	p.LocalIP, p.PeerIP = "10.0.1.10", "10.0.1.11"
	p.LocalENI, p.PeerENI = mk(p.LocalIP), mk(p.PeerIP)
	return p
}
