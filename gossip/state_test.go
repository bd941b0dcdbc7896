package gossip

import (
	"reflect"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/p2pshare/p2pshare/gossip/coord"
)

// A published table keeps a member's earlier copy only while sameMember
// says nothing changed, so sameMember must see a change to any field of
// Member: a field it forgot would stay stale in every table after the
// first. This changes each field in turn, by reflection, so a field added
// later is checked too (and a field of a kind not handled here fails the
// test until it is taught).
func TestSameMemberSeesEveryField(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	base := Member{ID: "a", State: StateAlive, Inc: 1, Seq: 2, LastSeen: at, Since: at, Period: time.Second,
		Addrs: []string{"/ip4/127.0.0.1/tcp/1"}, Files: 3, FreeBytes: 4, RTT: time.Millisecond,
		Coord: &coord.Coordinate{}, Offset: time.Millisecond, seen: new(atomic.Int64)}
	if !sameMember(&base, &base) {
		t.Fatal("a member differs from itself")
	}
	cp := base
	cp.Addrs = append([]string(nil), base.Addrs...)
	if !sameMember(&base, &cp) {
		t.Fatal("a member differs from a copy with its own addresses")
	}
	typ := reflect.TypeFor[Member]()
	for i := range typ.NumField() {
		name := typ.Field(i).Name
		b := base
		f := reflect.ValueOf(&b).Elem().Field(i)
		f = reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem() // settable, exported or not
		switch {
		case f.Type() == reflect.TypeFor[time.Time]():
			f.Set(reflect.ValueOf(at.Add(time.Second)))
		case f.Kind() == reflect.String:
			f.SetString(f.String() + "x")
		case f.CanInt():
			f.SetInt(f.Int() + 1)
		case f.CanUint():
			f.SetUint(f.Uint() + 1)
		case f.Kind() == reflect.Bool:
			f.SetBool(!f.Bool())
		case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
			f.Set(reflect.Append(f, reflect.ValueOf("/ip4/127.0.0.1/tcp/2")))
		case f.Kind() == reflect.Pointer:
			f.Set(reflect.New(f.Type().Elem()))
		default:
			t.Fatalf("Member.%s is of a kind (%s) this test cannot change: teach it", name, f.Kind())
		}
		if sameMember(&base, &b) {
			t.Errorf("sameMember misses a change to Member.%s", name)
		}
	}
}
