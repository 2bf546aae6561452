package console

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Time windows around each capture (the query language needs a window;
// the captures are years old).
const (
	winHTTP = "after 2013-03-07T00:00:00Z and before 2013-03-08T00:00:00Z"
	winTLS  = "after 2019-08-07T00:00:00Z and before 2019-08-08T00:00:00Z"
	winDNS  = "after 2013-11-25T00:00:00Z and before 2013-11-26T00:00:00Z"
	// The client of get.pcap's one HTTP flow.
	httpClient = "141.142.228.5"
)

// Columns of the results table.
const (
	colTime = iota
	colSensor
	colSource
	colDestination
	colService
	colPackets
	colBytes
	colDuration
	colIDs // the flow ID, then the Community ID
)

// TestConsole drives the console in Chromium against a real collector
// fed by real sensors: sign in, search, open a flow, read its packets and
// stream, download it, and check each answer against tshark on the
// original capture.
func TestConsole(t *testing.T) {
	bctx := newBrowser(t)
	e := startEnv(t)
	cid := onlyID(t, tsharkCommunityIDs(t, e.pcaps[capHTTP], "tcp"))

	t.Run("SignIn", func(t *testing.T) { testSignIn(t, bctx, e) })
	inv := newPage(t, bctx, e)
	inv.signIn(e.tokens["investigator"])
	t.Run("SearchByIP", func(t *testing.T) {
		ids := search(t, inv.with(t), "host "+httpClient+" and "+winHTTP)
		sameIDs(t, "host "+httpClient, ids, tsharkCommunityIDs(t, e.pcaps[capHTTP], "ip.addr == "+httpClient))
	})
	t.Run("SearchBySNI", func(t *testing.T) {
		ids := search(t, inv.with(t), "tls.client.server_name == "+sniName+" and "+winTLS)
		sameIDs(t, "SNI "+sniName, ids, tsharkCommunityIDs(t, e.pcaps[capTLS], `tls.handshake.extensions_server_name == "`+sniName+`"`))
	})
	t.Run("SearchByDNSName", func(t *testing.T) {
		ids := search(t, inv.with(t), "dns.question.name == "+dnsName+" and "+winDNS)
		sameIDs(t, "DNS "+dnsName, ids, tsharkCommunityIDs(t, e.pcaps[capDNS],
			`dns.qry.name == "`+dnsName+`" && frame.time >= "2013-11-25 00:00:00Z" && frame.time < "2013-11-26 00:00:00Z"`))
	})
	t.Run("FieldCompletion", func(t *testing.T) { testFieldCompletion(t, inv.with(t)) })
	t.Run("PagingAndHistogram", func(t *testing.T) { testPagingAndHistogram(t, inv.with(t), e) })
	t.Run("Sort", func(t *testing.T) { testSort(t, inv.with(t)) })
	t.Run("FirstPaint", func(t *testing.T) { testFirstPaint(t, inv.with(t)) })
	t.Run("OpenFlow", func(t *testing.T) { testOpenFlow(t, inv.with(t), e, cid) })
	t.Run("Packets", func(t *testing.T) { testPackets(t, inv.with(t), e, cid) })
	t.Run("FollowStream", func(t *testing.T) { testFollowStream(t, inv.with(t), e) })
	t.Run("Download", func(t *testing.T) { testDownload(t, inv.with(t), e, cid) })
	t.Run("Accessible", func(t *testing.T) { testAccessible(t, inv.with(t), cid) })
	t.Run("NoPcapRole", func(t *testing.T) { testNoPcapRole(t, bctx, e, cid) })
	t.Run("DownloadsAudited", func(t *testing.T) { testDownloadsAudited(t, bctx, e, cid) })
}

func onlyID(t *testing.T, ids map[string]bool) string {
	t.Helper()
	if len(ids) != 1 {
		t.Fatalf("want one flow, tshark finds %v", ids)
	}
	for id := range ids {
		return id
	}
	return ""
}

func testSignIn(t *testing.T, bctx context.Context, e *env) {
	p := newPage(t, bctx, e)
	p.do(chromedp.Navigate(e.base + "/"))
	p.waitDrawn()
	if got := get(p, chromedp.Location()); !strings.HasSuffix(strings.SplitN(got, "#", 2)[0], "/console/") {
		t.Errorf("GET / went to %s, want /console/", got)
	}
	// A wrong token is refused and the page says so.
	p.do(chromedp.SendKeys(chromedp.ID("token"), "not-a-token\r"))
	p.waitText("#signin-msg", "refused")
	if s := get(p, chromedp.Evaluate[string](`sessionStorage.getItem("tapir.token") || ""`)); s != "" {
		t.Errorf("a refused token was kept: %q", s)
	}
	p.clear("token")
	p.do(chromedp.SendKeys(chromedp.ID("token"), e.tokens["investigator"]+"\r"),
		chromedp.WaitVisible(chromedp.ID("q")))
	p.waitDrawn()
	if s := get(p, chromedp.Evaluate[string](`sessionStorage.getItem("tapir.token")`)); s != e.tokens["investigator"] {
		t.Errorf("the token is not in sessionStorage")
	}
	// Sign out forgets it and shows the sign-in form again.
	p.do(chromedp.Click(chromedp.ID("signout")), chromedp.WaitVisible(chromedp.ID("token")))
	if s := get(p, chromedp.Evaluate[string](`sessionStorage.getItem("tapir.token") || ""`)); s != "" {
		t.Errorf("sign-out kept the token")
	}
}

// search types a query into the search box, presses Enter, and returns
// the Community IDs of the result rows (every page).
func search(t *testing.T, p *page, q string) map[string]bool {
	t.Helper()
	p.open("#/search")
	p.clear("q")
	p.do(chromedp.SendKeys(chromedp.ID("q"), q+"\r"))
	get(p, chromedp.Poll[bool](`location.hash.startsWith("#/search?q=")`))
	p.waitDrawn()
	return collect(t, p, q, func() {})
}

// collect returns the Community IDs of the rows of the results shown and
// of every next page, calling onPage for each page.
func collect(t *testing.T, p *page, q string, onPage func()) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	for {
		onPage()
		if errText := p.text(".results .error"); errText != "" {
			t.Fatalf("search %q: %s", q, errText)
		}
		for _, cid := range get(p, chromedp.Evaluate[[]string](`[...document.querySelectorAll("table.flows tbody a.cid")].map(a => a.textContent)`)) {
			if ids[cid] {
				t.Errorf("search %q: flow %s listed twice", q, cid)
			}
			ids[cid] = true
		}
		if !strings.Contains(p.text("#results-status"), "more matched") {
			return ids
		}
		p.do(chromedp.Click(chromedp.CSS(`a[rel="next"]`)))
		get(p, chromedp.Poll[bool](`location.hash.includes("cursor=")`))
		p.waitDrawn()
	}
}

func sameIDs(t *testing.T, what string, got, want map[string]bool) {
	t.Helper()
	if len(want) == 0 {
		t.Fatalf("%s: tshark finds no flow", what)
	}
	g, w := keys(got), keys(want)
	if strings.Join(g, " ") != strings.Join(w, " ") {
		t.Errorf("%s: the console lists %v, tshark %v", what, g, w)
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// testOpenFlow follows the flow's link from the results to its page.
func testOpenFlow(t *testing.T, p *page, e *env, cid string) {
	search(t, p, "host "+httpClient+" and "+winHTTP)
	p.do(chromedp.Click(chromedp.CSS(`table.flows tbody tr a.fid`)))
	p.waitDrawn()
	if h := p.text("main h1"); !strings.Contains(h, httpClient+":") {
		t.Errorf("flow page heading %q lacks the client %s", h, httpClient)
	}
	fields := map[string]string{}
	for _, row := range p.table(".fields table") {
		fields[row[0]] = row[1]
	}
	for k, v := range map[string]string{"network.community_id": cid, "source.ip": httpClient, "network.transport": "tcp",
		"tapir.sensor_id": e.sensors[0]} {
		if fields[k] != v {
			t.Errorf("field %s = %q, want %q", k, fields[k], v)
		}
	}
	if get(p, chromedp.Evaluate[int](`document.querySelectorAll(".timeline svg rect.bar").length`)) == 0 {
		t.Errorf("no timeline chart: %q", p.text(".timeline"))
	}
	// The pivot box opens the same flow by Community ID.
	p.open("#/search")
	p.do(chromedp.SendKeys(chromedp.ID("pivot-id"), cid+"\r"))
	get(p, chromedp.Poll[bool](`location.hash.startsWith("#/flow/")`))
	p.waitDrawn()
	if got := p.text(".summary"); !strings.Contains(got, cid) {
		t.Errorf("the pivot box opened %q, want flow %s", got, cid)
	}
	// A malformed ID is refused with the reason; an unknown one is not found.
	for id, want := range map[string]string{"1:not-an-id": "is not a Community ID or flow ID",
		"1:AAAAAAAAAAAAAAAAAAAAAAAAAAA=": "No flow has the ID"} {
		p.do(chromedp.SendKeys(chromedp.ID("pivot-id"), id+"\r"))
		p.waitText("main .error", want)
	}
}

// testPackets compares the flow's packet table with tshark's list of the
// flow's frames, and one packet's hex dump with its bytes in the capture.
func testPackets(t *testing.T, p *page, e *env, cid string) {
	p.open(flowRoute(cid))
	rows := p.table("table.pkts")
	want := tsharkFrames(t, e.pcaps[capHTTP], cid)
	if len(rows) != len(want) {
		t.Fatalf("%d packets listed, tshark %d", len(rows), len(want))
	}
	for i, r := range rows {
		w := want[i]
		wantTime := w.time.Format("2006-01-02 15:04:05.000")
		if r[1] != wantTime || r[3] != strconv.Itoa(w.length) || r[4] != strconv.Itoa(w.captured) {
			t.Errorf("packet %d: %q %s/%s, tshark %q %d/%d", i+1, r[1], r[3], r[4], wantTime, w.length, w.captured)
		}
		if want, ok := summaryOf(w); ok && r[5] != want {
			t.Errorf("packet %d summary %q, tshark %q", i+1, r[5], want)
		} else if r[5] == "" {
			t.Errorf("packet %d has no summary", i+1)
		}
		if wantDir := map[bool]string{true: "client → server", false: "server → client"}[i%2 == 0]; i < 2 && r[2] != wantDir {
			t.Errorf("packet %d direction %q, want %q", i+1, r[2], wantDir)
		}
	}
	// Packet 4's hex dump holds its bytes as the capture has them.
	p.do(chromedp.Click(chromedp.CSS(`table.pkts tbody tr:nth-child(4) a`)))
	p.waitDrawn()
	dump := p.text("pre.hex")
	orig := readCapture(t, e.pcaps[capHTTP])
	if got, want := hexBytes(dump), hex.EncodeToString(orig[3].data); got != want {
		t.Errorf("packet 4's hex dump:\n%s\nwant bytes %s", dump, want)
	}
	if p.text("ol.layers") == "" {
		t.Errorf("packet 4 has no layers")
	}
}

// summaryOf is the summary line tshark's columns give for a frame, as
// "PROTOCOL INFO", where the two must agree: TCP segments shown by their
// ports and flags (without tshark's reassembly note) and HTTP requests.
// Frames whose columns tshark rewrites for a reassembled PDU are not
// compared (ok false).
func summaryOf(f frame) (string, bool) {
	info := strings.TrimSpace(strings.TrimSuffix(f.info, " [TCP segment of a reassembled PDU]"))
	switch {
	case f.proto == "TCP" && info != "" && info[0] >= '0' && info[0] <= '9': // "PORT → PORT [FLAGS] ..."
		return "TCP " + info, true
	case f.proto == "HTTP" && strings.HasPrefix(info, "GET "):
		return "HTTP " + info, true
	}
	return "", false
}

// hexBytes reads the hex columns back out of a hex+ASCII dump.
func hexBytes(dump string) string {
	var b strings.Builder
	for _, l := range strings.Split(dump, "\n") {
		if len(l) < 6 {
			continue
		}
		cols := l[6:min(len(l), 6+16*3+1)]
		b.WriteString(strings.ReplaceAll(cols, " ", ""))
	}
	return b.String()
}

func flowRoute(id string) string {
	return "#/flow/" + strings.NewReplacer("/", "%2F", "+", "%2B", "=", "%3D", ":", "%3A").Replace(id)
}

// testFollowStream compares the coloured conversation with tshark's
// follow,tcp,ascii of the same connection.
func testFollowStream(t *testing.T, p *page, e *env) {
	for _, tc := range []struct{ capture, client string }{
		{capHTTP, httpClient + ":59856"}, // HTTP: text
		{capTLS, "192.168.65.3:46638"},   // TLS 1.3: binary, shown as tshark's dots
	} {
		cid := onlyID(t, tsharkCommunityIDs(t, e.pcaps[tc.capture], "tcp"))
		followOne(t, p, e.pcaps[tc.capture], cid, tc.client)
	}
}

// followOne compares one flow's Follow Stream with tshark's.
func followOne(t *testing.T, p *page, pcap, cid, wantClient string) {
	p.open(flowRoute(cid))
	raw := get(p, chromedp.Evaluate[[][]string](`[...document.querySelectorAll("pre.follow .chunk")].map(s => [s.classList.contains("c2s") ? "c2s" : "s2c", s.textContent])`))
	var chunks []chunk
	for _, c := range raw {
		chunks = append(chunks, chunk{dir: c[0], data: latin1(c[1])})
	}
	client := p.text(".stream .legend .c2s")
	server := p.text(".stream .legend .s2c")
	ca, sa := endpointOf(client), endpointOf(server)
	if ca != wantClient {
		t.Errorf("client %q, want %s (the connection's initiator)", ca, wantClient)
	}
	want := tsharkFollowASCII(t, pcap, ca, sa)
	if got := followASCII(chunks); got != want {
		t.Errorf("Follow Stream differs from tshark's follow,tcp,ascii,%s,%s:\n--- console\n%s\n--- tshark\n%s", ca, sa, got, want)
	}
	if n := get(p, chromedp.Evaluate[int](`document.querySelectorAll("pre.follow .chunk.s2c").length`)); n == 0 {
		t.Errorf("no server chunk")
	}
}

// endpointOf takes "client 1.2.3.4:80: 136 bytes" to "1.2.3.4:80".
func endpointOf(legend string) string {
	f := strings.Fields(legend)
	if len(f) < 2 {
		return ""
	}
	return strings.TrimSuffix(f[1], ":")
}

// latin1 turns the text of a chunk (one char per byte) back into bytes.
func latin1(s string) []byte {
	var b []byte
	for _, r := range s {
		b = append(b, byte(r))
	}
	return b
}

// testDownload downloads the flow as pcap and pcapng from its page and
// compares both with tshark's selection of the flow from the original.
func testDownload(t *testing.T, p *page, e *env, cid string) {
	p.open(flowRoute(cid))
	want := filepath.Join(t.TempDir(), "tshark.pcap")
	tsharkSelect(t, e.pcaps[capHTTP], cid, want)
	wantPkts := readCapture(t, want)
	for _, format := range []string{"pcap", "pcapng"} {
		got := p.download(`.downloads button[data-format="` + format + `"]`)
		samePackets(t, format, readCapture(t, got), wantPkts)
		p.waitText(".dl-msg", "Downloaded")
	}
	// The whole result of a search, too.
	p.open(searchRoute("host " + httpClient + " and " + winHTTP))
	got := p.download(`.downloads button[data-format="pcap"]`)
	samePackets(t, "search result pcap", readCapture(t, got), wantPkts)
}

// testNoPcapRole: a token without pcap:read sees flows but no packets,
// and its download is refused with a message.
func testNoPcapRole(t *testing.T, bctx context.Context, e *env, cid string) {
	p := newPage(t, bctx, e)
	p.signIn(e.tokens["viewer"])
	p.open(flowRoute(cid))
	if got := p.text(".packets"); !strings.Contains(got, "lacks the pcap:read role") {
		t.Errorf("packets section without pcap:read: %q", got)
	}
	p.do(chromedp.Click(chromedp.CSS(`.downloads button[data-format="pcap"]`)))
	p.waitText(".dl-msg", "lacks the pcap:read role")
	p.noDownload()
}

// auditEntry is the part of an audit line the test reads.
type auditEntry struct {
	Subject  string `json:"subject"`
	Endpoint string `json:"endpoint"`
	Flow     string `json:"flow"`
	Query    string `json:"query"`
	Status   int    `json:"status"`
	Format   string `json:"format"`
}

// testDownloadsAudited: every download above is in the audit log, the
// refused one too; an admin sees them on the audit page.
func testDownloadsAudited(t *testing.T, bctx context.Context, e *env, cid string) {
	var pcaps []auditEntry
	deadline := time.Now().Add(5 * time.Second)
	for {
		pcaps = pcaps[:0]
		f, err := os.Open(e.audit)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var a auditEntry
			if json.Unmarshal(sc.Bytes(), &a) == nil && a.Endpoint == "pcap" {
				pcaps = append(pcaps, a)
			}
		}
		f.Close()
		if len(pcaps) >= 4 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	want := []auditEntry{
		{Subject: "console-investigator", Endpoint: "pcap", Flow: cid, Status: 200, Format: "pcap"},
		{Subject: "console-investigator", Endpoint: "pcap", Flow: cid, Status: 200, Format: "pcapng"},
		{Subject: "console-investigator", Endpoint: "pcap", Query: "host " + httpClient + " and " + winHTTP, Status: 200, Format: "pcap"},
		{Subject: "console-viewer", Endpoint: "pcap", Flow: cid, Status: 403},
	}
	if len(pcaps) != len(want) {
		t.Fatalf("audit log has %d pcap entries, want %d: %+v", len(pcaps), len(want), pcaps)
	}
	for i := range want {
		g := pcaps[i]
		if want[i].Format == "" {
			g.Format = ""
		}
		if g != want[i] {
			t.Errorf("audit entry %d: %+v, want %+v", i, g, want[i])
		}
	}
	// The admin's audit page lists them.
	p := newPage(t, bctx, e)
	p.signIn(e.tokens["admin"])
	p.open("#/audit")
	if errText := p.text("main .error"); errText != "" {
		t.Fatalf("audit page: %s", errText)
	}
	n := 0
	for _, row := range p.table("table.audit") {
		if row[4] == "pcap" {
			n++
		}
	}
	if n < len(want) {
		t.Errorf("the audit page lists %d pcap entries, want at least %d", n, len(want))
	}
}
