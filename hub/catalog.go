package hub

import (
	"time"

	"github.com/ztream/ztream/signaling"
)

// catalogEvery is the least time between two catalog messages: changes
// within it are told together.
const catalogEvery = time.Second

// CatalogChanged tells every connected peer, within catalogEvery, that the
// library changed (signaling.Catalog): pages fetch the catalog again. Calls
// that come while a message is due add nothing.
func (h *Hub) CatalogChanged() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || h.catalogDue {
		return
	}
	h.catalogDue = true
	wait := max(catalogEvery-time.Since(h.catalogSent), 0)
	h.catalogTimer = time.AfterFunc(wait, h.sendCatalog)
}

// sendCatalog sends the due catalog message to every peer that said hello.
func (h *Hub) sendCatalog() {
	h.mu.Lock()
	h.catalogDue = false
	h.catalogSent = time.Now()
	peers := make([]*participant, 0, len(h.peers))
	for _, p := range h.peers {
		peers = append(peers, p)
	}
	closed := h.closed
	h.mu.Unlock()
	if closed {
		return
	}
	for _, p := range peers {
		p.send(signaling.Catalog{})
	}
}
