package orderapi

import (
	"fmt"
	"strings"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
)

// Addrs splits a comma-separated list of addresses or base URLs (the flags
// of the load tools take one per service instance), dropping empty items.
func Addrs(list string) []string {
	var out []string
	for _, a := range strings.Split(list, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// roundRobinConfig is grpc-go's own round_robin balancer: it keeps a
// connection to every address and skips one that is down, so a killed
// instance costs the calls in flight on it and no more.
const roundRobinConfig = `{"loadBalancingConfig":[{"round_robin":{}}]}`

// DialSpread opens one client connection whose calls go round-robin over
// every address of addrs (comma-separated gRPC host:port, one per instance
// of a service).
func DialSpread(addrs string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	list := Addrs(addrs)
	switch len(list) {
	case 0:
		return nil, fmt.Errorf("no gRPC address in %q", addrs)
	case 1:
		return grpc.NewClient(list[0], opts...)
	}
	r := manual.NewBuilderWithScheme("orderapi")
	state := resolver.State{}
	for _, a := range list {
		state.Addresses = append(state.Addresses, resolver.Address{Addr: a})
	}
	r.InitialState(state)
	opts = append(opts, grpc.WithResolvers(r), grpc.WithDefaultServiceConfig(roundRobinConfig))
	return grpc.NewClient(r.Scheme()+":///"+strings.Join(list, ","), opts...)
}

// rotation hands out base URLs in turn: the REST client's spread over the
// instances of a service.
type rotation struct {
	urls []string
	next atomic.Uint64
}

func newRotation(list string) *rotation { return &rotation{urls: Addrs(list)} }

// url is the next base URL ("" when the list is empty).
func (r *rotation) url() string {
	if len(r.urls) == 0 {
		return ""
	}
	return r.urls[(r.next.Add(1)-1)%uint64(len(r.urls))]
}
