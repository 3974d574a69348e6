// Package devserver runs a complete Temporal server (frontend, history, matching and worker
// services) inside the current process, backed by SQLite. It serves `sluice dev` and the
// integration tests.
//
// With an empty Options.DataDir the database lives in memory and disappears with the process.
// With a DataDir it is a file under that directory: stopping the server and starting it again on
// the same directory (in this process or another) resumes every workflow that was running.
//
// A Server is not a production deployment: one history shard, one SQLite connection, no
// authorization, no TLS, no metrics, no HTTP API, no web UI.
//
// The server's SQLite plugin never closes a database once opened: an in-memory server's
// memory is only returned when the process exits, and a file stays open after Stop (a later
// Start on the same file in this process reuses that connection). Tests that start many
// in-memory servers pay a few MB each.
package devserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/membership/static"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
)

// DatabaseFileName is the SQLite file created under Options.DataDir.
const DatabaseFileName = "temporal.db"

// DefaultPort is the frontend port `sluice dev` listens on unless told otherwise. Start itself
// treats Port 0 as "pick a free port".
const DefaultPort = 7233

const clusterName = "active"

// Options configures Start. The zero value is a quiet in-memory server on 127.0.0.1, a free
// port and the "default" namespace.
type Options struct {
	// DataDir holds the SQLite database (temporal.db) and a LOCK file that keeps a second
	// server off it. Created if missing. Empty: an in-memory database, gone after Stop.
	DataDir string
	// IP the services bind to. Defaults to 127.0.0.1.
	IP string
	// Port of the frontend gRPC service. 0 picks a free port; read it back with
	// FrontendAddress. The other services always use free ports.
	Port int
	// UIPort is accepted for CLI symmetry and ignored: there is no web UI.
	UIPort int
	// Namespace registered at start (a no-op when it exists). Defaults to "default".
	Namespace string
	// Logger receives the server's logs. Defaults to text on stderr.
	Logger *slog.Logger
	// LogLevel is the lowest level passed on to Logger. Defaults to slog.LevelWarn: the
	// server is very noisy at info.
	LogLevel slog.Leveler
	// DynamicConfig overrides server dynamic config keys (for example
	// "limit.numPendingActivities.error": 5000). Values must have the type the key expects
	// (int, not int64).
	DynamicConfig map[string]any
}

// Server is a running embedded Temporal server. Stop releases it; Stop is idempotent and safe
// to call from several goroutines.
type Server struct {
	server   temporal.Server
	address  string
	logLevel *slog.LevelVar
	unlock   func() // releases the data dir
	stopOnce sync.Once
}

// Start starts a server and returns once its frontend accepts connections (the SDK client
// may still need a moment before the namespace is visible; client.Dial handles that).
func Start(opts Options) (*Server, error) {
	if opts.IP == "" {
		opts.IP = "127.0.0.1"
	}
	if opts.Namespace == "" {
		opts.Namespace = "default"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	level := &slog.LevelVar{}
	level.Set(slog.LevelWarn)
	if opts.LogLevel != nil {
		level.Set(opts.LogLevel.Level())
	}
	logger := newServerLogger(opts.Logger, level)

	ports, err := freePorts(opts.IP, 4)
	if err != nil {
		return nil, err
	}
	if opts.Port == 0 {
		opts.Port = ports[3]
	} else if err := checkPortFree(opts.IP, opts.Port); err != nil {
		// The server would otherwise fail deep inside its start-up with a less clear error.
		return nil, err
	}
	frontendAddr := net.JoinHostPort(opts.IP, strconv.Itoa(opts.Port))

	unlock := func() {}
	if opts.DataDir != "" {
		if err := os.MkdirAll(opts.DataDir, 0o755); err != nil {
			return nil, fmt.Errorf("creating data dir: %w", err)
		}
		if unlock, err = lockDataDir(opts.DataDir); err != nil {
			return nil, err
		}
	}
	s, err := start(opts, ports, frontendAddr, logger, level)
	if err != nil {
		unlock()
		return nil, err
	}
	s.unlock = unlock
	return s, nil
}

func start(opts Options, ports []int, frontendAddr string, logger serverLogger, level *slog.LevelVar) (*Server, error) {
	sqlConf, err := prepareDatabase(opts)
	if err != nil {
		return nil, err
	}

	conf := &config.Config{}
	conf.Global.Membership.MaxJoinDuration = 30 * time.Second
	conf.Global.Membership.BroadcastAddress = opts.IP
	conf.Persistence.DefaultStore = "sqlite-default"
	conf.Persistence.VisibilityStore = "sqlite-default"
	conf.Persistence.NumHistoryShards = 1
	conf.Persistence.DataStores = map[string]config.DataStore{"sqlite-default": {SQL: sqlConf}}
	conf.ClusterMetadata = &cluster.Config{
		EnableGlobalNamespace:    false,
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{
			clusterName: {
				Enabled:                true,
				InitialFailoverVersion: 1,
				RPCAddress:             frontendAddr,
				// On a restart the persisted cluster ID wins over this one.
				ClusterID: uuid.NewString(),
			},
		},
	}
	conf.DCRedirectionPolicy.Policy = "noop"
	service := func(port int) config.Service {
		var s config.Service
		s.RPC.GRPCPort = port
		s.RPC.BindOnIP = opts.IP
		return s
	}
	conf.Services = map[string]config.Service{
		string(primitives.FrontendService): service(opts.Port),
		string(primitives.HistoryService):  service(ports[0]),
		string(primitives.MatchingService): service(ports[1]),
		string(primitives.WorkerService):   service(ports[2]),
	}
	conf.Archival.History.State = "disabled"
	conf.Archival.Visibility.State = "disabled"
	conf.NamespaceDefaults.Archival.History.State = "disabled"
	conf.NamespaceDefaults.Archival.Visibility.State = "disabled"
	conf.PublicClient.HostPort = frontendAddr

	hosts := map[primitives.ServiceName]static.Hosts{}
	for name, svc := range conf.Services {
		hosts[primitives.ServiceName(name)] = static.SingleLocalHost(
			net.JoinHostPort(opts.IP, strconv.Itoa(svc.RPC.GRPCPort)))
	}

	srv, err := temporal.NewServer(
		temporal.WithConfig(conf),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithStaticHosts(hosts),
		temporal.WithLogger(logger),
		temporal.WithAuthorizer(authorization.NewNoopAuthorizer()),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper {
			return authorization.NewNoopClaimMapper()
		}),
		temporal.WithDynamicConfigClient(dynamicConfig(opts.DynamicConfig)),
	)
	if err != nil {
		return nil, fmt.Errorf("creating temporal server: %w", err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("starting temporal server: %w", err)
	}
	s := &Server{server: srv, address: frontendAddr, logLevel: level, unlock: func() {}}
	if err := waitListening(frontendAddr, 30*time.Second); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// FrontendAddress is the host:port of the frontend gRPC service, for client.Options.HostPort.
func (s *Server) FrontendAddress() string { return s.address }

// Stop stops every service and waits for them. Server logs are silenced from here on: the
// services report every poll and task that shutdown cancels, as errors.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		s.logLevel.Set(levelSilent)
		if err := s.server.Stop(); err != nil {
			// Nothing a caller could do about it; the error is still worth seeing.
			slog.Default().Error("stopping temporal dev server", "error", err)
		}
		s.unlock()
	})
}

// prepareDatabase returns the SQLite config. An in-memory database gets its schema from the
// SQLite plugin when first opened; a file gets it here when the file does not exist yet. The
// namespace is created in both cases when missing.
func prepareDatabase(opts Options) (*config.SQL, error) {
	conf := &config.SQL{PluginName: sqliteplugin.PluginName}
	if opts.DataDir == "" {
		// A unique name per server: the plugin shares connections by DSN, so two in-memory
		// servers in one process must not share a name.
		conf.DatabaseName = "sluice-" + uuid.NewString()
		conf.ConnectAttributes = map[string]string{"mode": "memory", "cache": "shared"}
	} else {
		file := filepath.Join(opts.DataDir, DatabaseFileName)
		conf.DatabaseName = file
		conf.ConnectAttributes = map[string]string{"mode": "rwc"}
		if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
			if err := sqliteschema.SetupSchema(conf); err != nil {
				// Do not leave a half-initialised file behind: the next start would skip setup.
				_ = os.Remove(file)
				return nil, fmt.Errorf("creating schema in %s: %w", file, err)
			}
		} else if err != nil {
			return nil, fmt.Errorf("checking database file: %w", err)
		}
	}
	ns, err := sqliteschema.NewNamespaceConfig(clusterName, opts.Namespace, false, nil)
	if err != nil {
		return nil, fmt.Errorf("namespace config: %w", err)
	}
	if err := sqliteschema.CreateNamespaces(conf, ns); err != nil {
		return nil, fmt.Errorf("creating namespace %q: %w", opts.Namespace, err)
	}
	return conf, nil
}

// dynamicConfig is what the temporal CLI's dev server sets, plus the caller's overrides.
func dynamicConfig(overrides map[string]any) dynamicconfig.StaticClient {
	dc := dynamicconfig.StaticClient{
		// Mutable state cache of 8k executions on the single host.
		dynamicconfig.HistoryCacheHostLevelMaxSize.Key():                 8096,
		dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key(): 100,
		// New search attributes and Nexus endpoints visible at once instead of after a cache
		// refresh. The uncached reads cost persistence QPS, hence the higher limits.
		dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key(): true,
		dynamicconfig.ForceNexusEndpointRefreshOnRead.Key():         true,
		dynamicconfig.FrontendPersistenceMaxQPS.Key():               10000,
		dynamicconfig.HistoryPersistenceMaxQPS.Key():                45000,
	}
	for k, v := range overrides {
		dc[dynamicconfig.MakeKey(k)] = v
	}
	return dc
}

// freePorts reserves n distinct free TCP ports on ip and releases them. Another process could
// take one before the server binds it; that is the usual price of port 0 with fixed configs.
func freePorts(ip string, n int) ([]int, error) {
	ports := make([]int, 0, n)
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func checkPortFree(ip string, port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("frontend port %d: %w", port, err)
	}
	return l.Close()
}

// waitListening polls addr until it accepts a TCP connection or the deadline passes.
func waitListening(addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var d net.Dialer
	for {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return conn.Close()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("temporal frontend %s not reachable after %s: %w", addr, timeout, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
