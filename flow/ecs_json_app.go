package flow

import "strconv"

// Direct encoders of the sensor's optional ECS objects (application
// metadata and timeline), written as encoding/json writes them: one
// record in five of the 10 M-packet benchmark input carries one, and
// encoding/json's reflection made those records cost twice the others.

func (a *jsonAppender) dns(d *ECSDNS) {
	a.raw(`{"id":`)
	a.str(d.ID)
	a.raw(`,"type":`)
	a.str(d.Type)
	a.raw(`,"question":{"name":`)
	a.str(d.Question.Name)
	a.raw(`,"type":`)
	a.str(d.Question.Type)
	a.raw(`}`)
	first := false
	a.strField(&first, `"response_code":`, d.ResponseCode, true)
	if len(d.Answers) > 0 {
		a.raw(`,"answers":[`)
		for i := range d.Answers {
			if i > 0 {
				a.b = append(a.b, ',')
			}
			a.dnsAnswer(&d.Answers[i])
		}
		a.raw(`]`)
	}
	if len(d.ResolvedIP) > 0 {
		a.raw(`,"resolved_ip":`)
		a.strs(d.ResolvedIP)
	}
	a.b = append(a.b, '}')
}

func (a *jsonAppender) dnsAnswer(an *ECSDNSAnswer) {
	a.raw(`{"name":`)
	a.str(an.Name)
	a.raw(`,"type":`)
	a.str(an.Type)
	a.raw(`,"ttl":`)
	a.b = strconv.AppendUint(a.b, uint64(an.TTL), 10)
	first := false
	a.strField(&first, `"data":`, an.Data, true)
	a.b = append(a.b, '}')
}

func (a *jsonAppender) tls(t *ECSTLS) {
	a.b = append(a.b, '{')
	first := true
	a.strField(&first, `"version":`, t.Version, true)
	a.strField(&first, `"version_protocol":`, t.VersionProtocol, true)
	a.strField(&first, `"cipher":`, t.Cipher, true)
	a.strField(&first, `"next_protocol":`, t.NextProtocol, true)
	a.key(&first, `"client":{`)
	c := &t.Client
	f := true
	a.strField(&f, `"server_name":`, c.ServerName, true)
	a.strField(&f, `"ja3":`, c.JA3, true)
	a.strField(&f, `"ja4":`, c.JA4, true)
	if len(c.ALPN) > 0 {
		a.key(&f, `"alpn":`)
		a.strs(c.ALPN)
	}
	a.raw(`}}`)
}

func (a *jsonAppender) http(h *ECSHTTP) {
	a.b = append(a.b, '{')
	first := true
	if h.Request != nil {
		a.key(&first, `"request":{"method":`)
		a.str(h.Request.Method)
		a.b = append(a.b, '}')
	}
	if r := h.Response; r != nil {
		a.key(&first, `"response":{"status_code":`)
		a.b = strconv.AppendInt(a.b, int64(r.StatusCode), 10)
		f := false
		a.strField(&f, `"mime_type":`, r.MimeType, true)
		a.b = append(a.b, '}')
	}
	a.b = append(a.b, '}')
}

func (a *jsonAppender) url(u *ECSURL) {
	a.b = append(a.b, '{')
	first := true
	a.strField(&first, `"original":`, u.Original, true)
	a.strField(&first, `"domain":`, u.Domain, true)
	a.strField(&first, `"path":`, u.Path, true)
	a.strField(&first, `"query":`, u.Query, true)
	a.b = append(a.b, '}')
}

func (a *jsonAppender) timeline(t *ECSTimeline) {
	a.raw(`{"interval_ms":`)
	a.b = strconv.AppendInt(a.b, t.IntervalMs, 10)
	a.raw(`,"points":`)
	a.b = strconv.AppendUint(a.b, uint64(t.Points), 10)
	first := false
	a.uintField(&first, `"cut":`, uint64(t.Cut), true)
	a.raw(`,"offset_ms":`)
	if t.OffsetMs == nil {
		a.raw("null")
	} else {
		a.b = append(a.b, '[')
		for i, v := range t.OffsetMs {
			if i > 0 {
				a.b = append(a.b, ',')
			}
			a.b = strconv.AppendInt(a.b, v, 10)
		}
		a.b = append(a.b, ']')
	}
	a.raw(`,"packets":`)
	a.uints(t.Packets)
	a.raw(`,"bytes":`)
	a.uints(t.Bytes)
	a.strField(&first, `"error":`, t.Error, true)
	a.b = append(a.b, '}')
}

// uints writes a []uint64 as encoding/json does (null when nil).
func (a *jsonAppender) uints(v []uint64) {
	if v == nil {
		a.raw("null")
		return
	}
	a.b = append(a.b, '[')
	for i, x := range v {
		if i > 0 {
			a.b = append(a.b, ',')
		}
		a.b = strconv.AppendUint(a.b, x, 10)
	}
	a.b = append(a.b, ']')
}
