// vcsim-iaas: govmomi's vCenter simulator (Debian's 0.24), seeded with the inventory the
// iaas contract tests and the demo inventory share.
//
// Prints exactly one line, VCSIM_URL=<url>, once ready, then serves until SIGTERM/SIGINT or
// until stdin (when it is a pipe) closes. GET /_stats returns SOAP calls counted per method,
// GET /_bytes their request plus response body bytes; POST /_vm?op=rename&name=a&to=b (or
// op=destroy&name=a, op=create&name=a) changes VMs behind the client's back.
package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"encoding/xml"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/types"
)

// seedVM is one row of the shared seed; keep in sync with shared/vsphere/src/demo.rs.
type seedVM struct {
	name     string
	power    types.VirtualMachinePowerState
	tools    bool
	ip       string
	guestID  string
	fullName string
	cpus     int32
	memoryMB int64
	attrs    map[string]string
	host     int    // index into the cluster's hosts, sorted by name
	ds       string // datastore holding the VM's files
	template bool
	folder   string // VM folder under the datacenter's vm folder
	hotAdd   bool   // cpuHotAddEnabled and memoryHotAddEnabled
}

// The bot's folder, one for infrastructure VMs it must leave alone, and an empty one for
// VMs decommissioned by move_and_unregister. Keep in sync with topology in seed.rs.
var vmFolders = []string{"iaas", "Infrastructure", "decommissioned"}

const win2022 = "windows2019srvNext_64Guest" // vSphere's id for Windows Server 2022

// guestNames is what vCenter shows as the OS of a VM made with a guest id, before Tools
// reports one; vcsim shows the id itself, so the frontend patches new VMs with these.
// Keep in sync with guest_full_name in shared/vsphere/src/demo/seed.rs.
var guestNames = map[string]string{
	"ubuntu64Guest":          "Ubuntu Linux (64-bit)",
	"rhel8_64Guest":          "Red Hat Enterprise Linux 8 (64-bit)",
	"rhel9_64Guest":          "Red Hat Enterprise Linux 9 (64-bit)",
	"debian11_64Guest":       "Debian GNU/Linux 11 (64-bit)",
	"debian12_64Guest":       "Debian GNU/Linux 12 (64-bit)",
	"windows2019srv_64Guest": "Microsoft Windows Server 2019 (64-bit)",
	win2022:                  "Microsoft Windows Server 2022 (64-bit)",
	"otherLinux64Guest":      "Other Linux (64-bit)",
	"otherGuest64":           "Other (64-bit)",
}

const gib = int64(1) << 30

// datastoreGB is (capacity, free) per datastore: vcsim reports the temp directory's file
// system for every datastore, so the launcher sets distinct sizes. Keep in sync with
// datastore_space in shared/vsphere/src/demo/seed.rs.
var datastoreGB = map[string][2]int64{"LocalDS_0": {500, 60}, "LocalDS_1": {1000, 700}}

// usedGB is summary.storage.committed per seed VM (used_gb in seed.rs).
var usedGB = map[string]int64{
	"app-web-01": 20, "app-web-02": 20, "app-db-01": 120, "win-app-01": 60,
	"build-agent-07": 10, "tmpl-ubuntu-22": 8, "dc-01": 60, "tmpl-win-2022": 30,
}

var customFields = []string{"iaas.owner", "iaas.created", "iaas.expires"}

var seed = []seedVM{
	{"app-web-01", types.VirtualMachinePowerStatePoweredOn, true, "10.20.0.11", "ubuntu64Guest", "Ubuntu Linux (64-bit)", 2, 4096,
		map[string]string{"iaas.owner": "U0USER1", "iaas.created": "2026-01-15"}, 0, "LocalDS_0", false, "iaas", true},
	{"app-web-02", types.VirtualMachinePowerStatePoweredOn, true, "10.20.0.12", "ubuntu64Guest", "Ubuntu Linux (64-bit)", 2, 4096,
		nil, 1, "LocalDS_0", false, "iaas", false},
	{"app-db-01", types.VirtualMachinePowerStatePoweredOn, false, "10.20.0.21", "rhel9_64Guest", "Red Hat Enterprise Linux 9 (64-bit)", 4, 16384,
		map[string]string{"iaas.owner": "U0ADMIN"}, 2, "LocalDS_1", false, "iaas", false},
	{"win-app-01", types.VirtualMachinePowerStatePoweredOff, false, "", win2022, "Microsoft Windows Server 2022 (64-bit)", 2, 8192,
		nil, 0, "LocalDS_1", false, "iaas", false},
	{"build-agent-07", types.VirtualMachinePowerStateSuspended, false, "10.20.0.70", "debian11_64Guest", "Debian GNU/Linux 12 (64-bit)", 1, 2048,
		nil, 1, "LocalDS_0", false, "iaas", false},
	// Templates: present in vCenter, never listed by the bot, deployable.
	{"tmpl-ubuntu-22", types.VirtualMachinePowerStatePoweredOff, false, "", "ubuntu64Guest", "Ubuntu Linux (64-bit)", 2, 4096,
		nil, 2, "LocalDS_0", true, "iaas", false},
	// A protected VM outside the bot's folder.
	{"dc-01", types.VirtualMachinePowerStatePoweredOn, true, "10.20.0.5", win2022, "Microsoft Windows Server 2022 (64-bit)", 2, 4096,
		nil, 2, "LocalDS_1", false, "Infrastructure", false},
	{"tmpl-win-2022", types.VirtualMachinePowerStatePoweredOff, false, "", win2022, "Microsoft Windows Server 2022 (64-bit)", 2, 8192,
		nil, 0, "LocalDS_1", true, "iaas", false},
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	useTLS := flag.Bool("tls", false, "serve HTTPS with a fresh self-signed certificate")
	certOut := flag.String("cert-out", "", "with -tls: write the server certificate (PEM) to this file")
	extra := flag.Int("vms", 0, "extra powered-on VMs named bench-vm-001...")
	delays := flag.String("delay", "", "per-method delays, e.g. RetrievePropertiesEx=500,Login=100 (ms)")
	user := flag.String("username", "iaas", "the only user Login accepts, as a real vCenter accepts only its accounts")
	password := flag.String("password", "secret", "that user's password")
	lags := flag.String("http-delay", "", "like -delay, but only for calls over HTTP (the launcher's own /_vm changes are not slowed)")
	holds := flag.String("task-hold", "", "tasks of these methods read as running for this long after the call, e.g. PowerOffVM_Task=3000 (ms)")
	flag.Parse()

	methodDelay, err := parseDelays(*delays)
	if err != nil {
		log.Fatalf("-delay: %v", err)
	}
	taskHolds, err := parseDelays(*holds)
	if err != nil {
		log.Fatalf("-task-hold: %v", err)
	}
	httpDelays, err := parseDelays(*lags)
	if err != nil {
		log.Fatalf("-http-delay: %v", err)
	}

	model := simulator.VPX()
	model.Host = 0 // no standalone host: one cluster of three hosts
	model.ClusterHost = 3
	model.Datastore = 2
	model.Machine = 0 // the seed creates every VM itself
	model.Autostart = false
	if err := model.Create(); err != nil {
		log.Fatalf("create model: %v", err)
	}

	world, err := applySeed(model, *extra)
	if err != nil {
		log.Fatalf("seed: %v", err)
	}
	seedDatastores()
	fixStorage()
	// Delays start only now, so seeding itself is never slowed down.
	model.DelayConfig.MethodDelay = methodDelay

	model.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(*user, *password)}
	if *useTLS {
		cert, certPEM, err := selfSignedCert()
		if err != nil {
			log.Fatalf("tls: %v", err)
		}
		if *certOut != "" {
			if err := writeFileAtomic(*certOut, certPEM); err != nil {
				log.Fatalf("-cert-out: %v", err)
			}
		}
		model.Service.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	}

	server := model.Service.NewServer()
	// No client knows the port yet, so swapping the handler here is safe.
	front := newFrontend(server.Config.Handler)
	front.holds = taskHolds
	front.world = world
	front.lags = httpDelays
	server.Config.Handler = front

	scheme := "http"
	if *useTLS {
		scheme = "https"
	}
	fmt.Printf("VCSIM_URL=%s://%s/sdk\n", scheme, server.Listener.Addr().String())
	os.Stdout.Sync()

	waitForShutdown()
	server.Close()
	model.Remove()
}

func parseDelays(spec string) (map[string]int, error) {
	delays := map[string]int{}
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		parts := strings.SplitN(item, "=", 2)
		if len(parts) != 2 {
			return nil, fmt.Errorf("%q is not Method=ms", item)
		}
		ms, err := strconv.Atoi(parts[1])
		if err != nil || ms < 0 {
			return nil, fmt.Errorf("%q: bad milliseconds", item)
		}
		delays[parts[0]] = ms
	}
	return delays, nil
}

// waitForShutdown returns on SIGTERM/SIGINT, or when stdin is a pipe and its writer goes away
// (the test harness holds the other end; a /dev/null stdin from a shell script is ignored).
func waitForShutdown() {
	done := make(chan struct{}, 2)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-sigs; done <- struct{}{} }()

	if fi, err := os.Stdin.Stat(); err == nil && fi.Mode()&os.ModeNamedPipe != 0 {
		go func() {
			_, _ = io.Copy(ioutil.Discard, os.Stdin)
			done <- struct{}{}
		}()
	}
	<-done
}

// world is what seeding made and what the /_vm endpoint needs to change VMs later.
type world struct {
	c       *vim25.Client
	folders map[string]*object.Folder
	pool    *object.ResourcePool
	hosts   []*object.HostSystem
	fields  map[string]int32
	mu      sync.Mutex
	created int
}

func applySeed(model *simulator.Model, extra int) (*world, error) {
	ctx := context.Background()
	// In-process client: calls go straight to the simulator, no HTTP, no session needed.
	c, err := vim25.NewClient(ctx, model.Service)
	if err != nil {
		return nil, err
	}

	dc := simulator.Map.Any("Datacenter").(*simulator.Datacenter)
	folders, err := object.NewDatacenter(c, dc.Reference()).Folders(ctx)
	if err != nil {
		return nil, err
	}
	folderByName := map[string]*object.Folder{}
	for _, name := range vmFolders {
		f, err := folders.VmFolder.CreateFolder(ctx, name)
		if err != nil {
			return nil, err
		}
		folderByName[name] = f
	}
	cluster := simulator.Map.Any("ClusterComputeResource").(*simulator.ClusterComputeResource)
	pool := object.NewResourcePool(c, *cluster.ResourcePool)
	hosts := sortedHosts(c)

	fields, err := defineCustomFields(ctx, c)
	if err != nil {
		return nil, err
	}

	all := append([]seedVM{}, seed...)
	for i := 1; i <= extra; i++ {
		all = append(all, plainVM(fmt.Sprintf("bench-vm-%03d", i), i))
	}

	for i, s := range all {
		// Seed VMs have a NIC, as real ones (and templates) do; the bench VMs need none.
		nic := i < len(seed)
		if err := createVM(ctx, c, folderByName[s.folder], pool, hosts[s.host%len(hosts)], fields, s, nic); err != nil {
			return nil, fmt.Errorf("%s: %v", s.name, err)
		}
	}
	return &world{c: c, folders: folderByName, pool: pool, hosts: hosts, fields: fields}, nil
}

// plainVM is a powered-on VM in the bot's folder, as the bench VMs and /_vm?op=create make.
func plainVM(name string, i int) seedVM {
	return seedVM{
		name: name, power: types.VirtualMachinePowerStatePoweredOn, tools: true,
		ip: fmt.Sprintf("10.30.%d.%d", i/250%250, i%250+1), guestID: "ubuntu64Guest", fullName: "Ubuntu Linux (64-bit)",
		cpus: 1, memoryMB: 1024, host: i, ds: "LocalDS_0", folder: "iaas",
	}
}

// changeVM renames, destroys or creates a VM behind the bot's back, through the simulator's
// own methods so property collectors see the change as they would on vCenter.
func (w *world) changeVM(op, name, to string) error {
	ctx := context.Background()
	w.mu.Lock()
	defer w.mu.Unlock()
	if op == "create" {
		w.created++
		return createVM(ctx, w.c, w.folders["iaas"], w.pool, w.hosts[w.created%len(w.hosts)], w.fields, plainVM(name, w.created), false)
	}
	var ref *types.ManagedObjectReference
	for _, e := range simulator.Map.All("VirtualMachine") {
		if vm, ok := e.(*simulator.VirtualMachine); ok && vm.Name == name {
			r := vm.Reference()
			ref = &r
		}
	}
	if ref == nil {
		return fmt.Errorf("no VM named %s", name)
	}
	vm := object.NewVirtualMachine(w.c, *ref)
	switch op {
	case "rename":
		return waitTask(ctx, func(ctx context.Context) (*object.Task, error) { return vm.Rename(ctx, to) })
	case "destroy":
		if state, err := vm.PowerState(ctx); err == nil && state != types.VirtualMachinePowerStatePoweredOff {
			if err := waitTask(ctx, vm.PowerOff); err != nil {
				return err
			}
		}
		return waitTask(ctx, vm.Destroy)
	}
	return fmt.Errorf("unknown op %q", op)
}

func sortedHosts(c *vim25.Client) []*object.HostSystem {
	var hosts []*object.HostSystem
	for _, h := range simulator.Map.All("HostSystem") {
		hosts = append(hosts, object.NewHostSystem(c, h.Reference()))
	}
	names := map[*object.HostSystem]string{}
	for _, h := range hosts {
		names[h] = simulator.Map.Get(h.Reference()).(*simulator.HostSystem).Name
	}
	sort.Slice(hosts, func(i, j int) bool { return names[hosts[i]] < names[hosts[j]] })
	return hosts
}

func defineCustomFields(ctx context.Context, c *vim25.Client) (map[string]int32, error) {
	m, err := object.GetCustomFieldsManager(c)
	if err != nil {
		return nil, err
	}
	keys := map[string]int32{}
	for _, name := range customFields {
		def, err := m.Add(ctx, name, "VirtualMachine", nil, nil)
		if err != nil {
			return nil, fmt.Errorf("custom field %s: %v", name, err)
		}
		keys[name] = def.Key
	}
	return keys, nil
}

func createVM(ctx context.Context, c *vim25.Client, folder *object.Folder, pool *object.ResourcePool,
	host *object.HostSystem, fields map[string]int32, s seedVM, nic bool) error {
	hotAdd := s.hotAdd
	spec := types.VirtualMachineConfigSpec{
		Name:                s.name,
		GuestId:             s.guestID,
		NumCPUs:             s.cpus,
		MemoryMB:            s.memoryMB,
		MemoryHotAddEnabled: &hotAdd,
		CpuHotAddEnabled:    &hotAdd,
		Files:               &types.VirtualMachineFileInfo{VmPathName: "[" + s.ds + "]"},
	}
	if nic {
		card := "vmxnet3"
		if strings.HasPrefix(s.guestID, "win") {
			card = "e1000e"
		}
		backing := &types.VirtualEthernetCardNetworkBackingInfo{
			VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: "VM Network"},
		}
		device, err := object.VirtualDeviceList{}.CreateEthernetCard(card, backing)
		if err != nil {
			return err
		}
		spec.DeviceChange, err = object.VirtualDeviceList{device}.ConfigSpec(types.VirtualDeviceConfigSpecOperationAdd)
		if err != nil {
			return err
		}
	}
	task, err := folder.CreateVM(ctx, spec, pool, host)
	if err != nil {
		return err
	}
	info, err := task.WaitForResult(ctx, nil)
	if err != nil {
		return err
	}
	ref := info.Result.(types.ManagedObjectReference)
	vm := object.NewVirtualMachine(c, ref)

	if s.template {
		if err := vm.MarkAsTemplate(ctx); err != nil {
			return err
		}
	}

	// Power through the simulator's own tasks so runtime and summary stay consistent.
	if s.power != types.VirtualMachinePowerStatePoweredOff {
		if err := waitTask(ctx, vm.PowerOn); err != nil {
			return err
		}
	}
	if s.power == types.VirtualMachinePowerStateSuspended {
		if err := waitTask(ctx, vm.Suspend); err != nil {
			return err
		}
	}

	setGuest(simulator.Map.Get(ref).(*simulator.VirtualMachine), s)

	m, err := object.GetCustomFieldsManager(c)
	if err != nil {
		return err
	}
	for _, name := range customFields { // fixed order: deterministic customValue
		if value, ok := s.attrs[name]; ok {
			if err := m.Set(ctx, ref, fields[name], value); err != nil {
				return err
			}
		}
	}
	return nil
}

func waitTask(ctx context.Context, start func(context.Context) (*object.Task, error)) error {
	task, err := start(ctx)
	if err != nil {
		return err
	}
	return task.Wait(ctx)
}

// setGuest seeds what VMware Tools would report; vcsim has no guest of its own.
func setGuest(vm *simulator.VirtualMachine, s seedVM) {
	simulator.Map.WithLock(vm, func() {
		vm.Config.GuestFullName = s.fullName
		vm.Summary.Config.GuestFullName = s.fullName
		vm.Guest.IpAddress = s.ip
		if s.tools {
			vm.Guest.GuestFullName = s.fullName // only a running guest reports its OS
			vm.Guest.ToolsStatus = types.VirtualMachineToolsStatusToolsOk
			vm.Guest.ToolsRunningStatus = string(types.VirtualMachineToolsRunningStatusGuestToolsRunning)
		} else {
			vm.Guest.ToolsStatus = types.VirtualMachineToolsStatusToolsNotRunning
			vm.Guest.ToolsRunningStatus = string(types.VirtualMachineToolsRunningStatusGuestToolsNotRunning)
		}
		if vm.Summary.Guest == nil {
			vm.Summary.Guest = &types.VirtualMachineGuestSummary{}
		}
		vm.Summary.Guest.IpAddress = s.ip
		vm.Summary.Guest.GuestFullName = vm.Guest.GuestFullName
		vm.Summary.Guest.ToolsStatus = vm.Guest.ToolsStatus
		vm.Summary.Guest.ToolsRunningStatus = vm.Guest.ToolsRunningStatus
	})
}

// frontend counts SOAP calls per method, serves /_stats, and adds what real vCenter does and
// vcsim 0.24 does not: it refuses ShutdownGuest on a powered-on VM without running Tools, and
// a VM made by CreateVM or CloneVM shows its OS's name rather than its guest id.
type frontend struct {
	next  http.Handler
	mu    sync.Mutex
	calls map[string]uint64
	// Request plus response body bytes per method, for the benchmark.
	bytes map[string]uint64
	world *world
	// Per-method delays (ms) for calls over HTTP only.
	lags map[string]int
	// Methods whose task reads as running for a while (ms) after the call returns.
	holds map[string]int
}

func newFrontend(next http.Handler) *frontend {
	return &frontend{next: next, calls: map[string]uint64{}, bytes: map[string]uint64{}}
}

func (f *frontend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == "/_stats" {
		f.serveStats(w, f.calls)
		return
	}
	if r.Method == http.MethodGet && r.URL.Path == "/_bytes" {
		f.serveStats(w, f.bytes)
		return
	}
	if r.Method == http.MethodPost && r.URL.Path == "/_vm" {
		q := r.URL.Query()
		if err := f.world.changeVM(q.Get("op"), q.Get("name"), q.Get("to")); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/sdk" {
		f.next.ServeHTTP(w, r)
		return
	}

	body, err := ioutil.ReadAll(r.Body)
	_ = r.Body.Close()
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	r.Body = ioutil.NopCloser(bytes.NewReader(body))

	method, this := soapCall(body)
	if method != "" {
		f.mu.Lock()
		f.calls[method]++
		f.bytes[method] += uint64(len(body))
		f.mu.Unlock()
		if ms, ok := f.lags[method]; ok {
			time.Sleep(time.Duration(ms) * time.Millisecond)
		}
		counted := &countingWriter{ResponseWriter: w}
		defer func() {
			f.mu.Lock()
			f.bytes[method] += counted.n
			f.mu.Unlock()
		}()
		w = counted
	}
	if method == "ShutdownGuest" && toolsMissing(this) {
		writeFault(w, "ToolsUnavailable",
			"Cannot complete operation because VMware Tools is not running in this virtual machine.")
		return
	}
	if method == "ReconfigVM_Task" {
		// vcsim recomputes summary.storage from the VM's (tiny) files on every reconfigure.
		f.serveThen(w, r, func([]byte) { fixStorage() })
		return
	}
	if ms, ok := f.holds[method]; ok {
		// vcsim finishes every task inside the call; a real vCenter's may run for minutes.
		// The change is made, but the task reads as running until the hold ends.
		f.serveThen(w, r, func(answer []byte) {
			if m := taskReturn.FindSubmatch(answer); m != nil {
				holdTask(types.ManagedObjectReference{Type: "Task", Value: string(m[1])}, time.Duration(ms)*time.Millisecond)
			}
		})
		return
	}
	if method == "CreateVM_Task" || method == "CloneVM_Task" {
		// vcsim runs the task inside the call, so the VM exists once it returns. The answer
		// is held back until the name is patched, so no client can read the VM before.
		f.serveThen(w, r, func([]byte) { fixGuestNames() })
		return
	}
	f.next.ServeHTTP(w, r)
}

// serveThen has vcsim answer r, runs then (given the answer's body) and only after it sends
// the answer: what then changes is in place before the client reads the answer.
func (f *frontend) serveThen(w http.ResponseWriter, r *http.Request, then func(answer []byte)) {
	rec := httptest.NewRecorder()
	f.next.ServeHTTP(rec, r)
	then(rec.Body.Bytes())
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// seedDatastores gives each datastore its seeded capacity and free space.
func seedDatastores() {
	for _, e := range simulator.Map.All("Datastore") {
		ds, ok := e.(*simulator.Datastore)
		if !ok {
			continue
		}
		size, ok := datastoreGB[ds.Name]
		if !ok {
			continue
		}
		simulator.Map.WithLock(ds, func() {
			ds.Summary.Capacity = size[0] * gib
			ds.Summary.FreeSpace = size[1] * gib
			info := ds.Info.GetDatastoreInfo()
			info.FreeSpace = ds.Summary.FreeSpace
			info.MaxFileSize = ds.Summary.FreeSpace
		})
	}
}

// fixStorage sets summary.storage.committed of the seed VMs to their seeded use.
var taskReturn = regexp.MustCompile(`<returnval type="Task">([^<]+)</returnval>`)

// holdTask shows a finished task as running for d, then as it ended.
func holdTask(ref types.ManagedObjectReference, d time.Duration) {
	task, ok := simulator.Map.Get(ref).(*simulator.Task)
	if !ok {
		return
	}
	var ended types.TaskInfoState
	simulator.Map.WithLock(task, func() { ended = task.Info.State })
	simulator.Map.Update(task, []types.PropertyChange{{Name: "info.state", Val: types.TaskInfoStateRunning}})
	time.AfterFunc(d, func() {
		simulator.Map.Update(task, []types.PropertyChange{{Name: "info.state", Val: ended}})
	})
}

func fixStorage() {
	for _, e := range simulator.Map.All("VirtualMachine") {
		vm, ok := e.(*simulator.VirtualMachine)
		if !ok {
			continue
		}
		simulator.Map.WithLock(vm, func() {
			used, ok := usedGB[vm.Name]
			if !ok {
				return
			}
			if vm.Summary.Storage == nil {
				vm.Summary.Storage = &types.VirtualMachineStorageSummary{}
			}
			vm.Summary.Storage.Committed = used * gib
		})
	}
}

// fixGuestNames gives every VM whose OS name is still its guest id the name vCenter shows.
func fixGuestNames() {
	for _, e := range simulator.Map.All("VirtualMachine") {
		vm, ok := e.(*simulator.VirtualMachine)
		if !ok {
			continue
		}
		simulator.Map.WithLock(vm, func() {
			if vm.Config == nil || vm.Config.GuestFullName != vm.Config.GuestId {
				return
			}
			if name, ok := guestNames[vm.Config.GuestId]; ok {
				vm.Config.GuestFullName = name
				vm.Summary.Config.GuestFullName = name
			}
		})
	}
}

// countingWriter counts the response body bytes a handler writes.
type countingWriter struct {
	http.ResponseWriter
	n uint64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n += uint64(n)
	return n, err
}

func (f *frontend) serveStats(w http.ResponseWriter, counts map[string]uint64) {
	f.mu.Lock()
	out, err := json.Marshal(counts)
	f.mu.Unlock()
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

// soapCall returns the name of the first element inside soapenv:Body and its _this reference.
func soapCall(body []byte) (string, types.ManagedObjectReference) {
	var this types.ManagedObjectReference
	dec := xml.NewDecoder(bytes.NewReader(body))
	inBody, method, inThis := false, "", false
	for {
		tok, err := dec.Token()
		if err != nil {
			return method, this
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch {
			case !inBody && t.Name.Local == "Body":
				inBody = true
			case inBody && method == "":
				method = t.Name.Local
			case method != "" && t.Name.Local == "_this":
				inThis = true
				for _, a := range t.Attr {
					if a.Name.Local == "type" {
						this.Type = a.Value
					}
				}
			default:
				if method != "" {
					return method, this
				}
			}
		case xml.CharData:
			if inThis {
				this.Value += strings.TrimSpace(string(t))
			}
		case xml.EndElement:
			if inThis {
				return method, this
			}
		}
	}
}

func toolsMissing(ref types.ManagedObjectReference) bool {
	vm, ok := simulator.Map.Get(ref).(*simulator.VirtualMachine)
	if !ok {
		return false // let vcsim answer ManagedObjectNotFound
	}
	missing := false
	simulator.Map.WithLock(vm, func() {
		missing = vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn &&
			(vm.Guest == nil || vm.Guest.ToolsRunningStatus != string(types.VirtualMachineToolsRunningStatusGuestToolsRunning))
	})
	return missing
}

// writeFault answers a SOAP fault shaped exactly like vcsim's own.
func writeFault(w http.ResponseWriter, fault, message string) {
	var msg bytes.Buffer
	_ = xml.EscapeText(&msg, []byte(message))
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	fmt.Fprintf(w, `%s<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" `+
		`xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" `+
		`xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault>`+
		`<faultcode>ServerFaultCode</faultcode><faultstring>%s</faultstring>`+
		`<detail><%sFault xmlns="urn:vim25" xsi:type="%s"></%sFault></detail>`+
		`</soapenv:Fault></soapenv:Body></soapenv:Envelope>`,
		xml.Header, msg.String(), fault, fault, fault)
}

// selfSignedCert makes a leaf certificate for 127.0.0.1/localhost that clients can trust directly
// (not a CA: rustls refuses a CA certificate as a server's end-entity certificate).
func selfSignedCert() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "vcsim-iaas"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	return cert, certPEM, err
}

func writeFileAtomic(path string, data []byte) error {
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	if err := ioutil.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
