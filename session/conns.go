package session

// ConnWriter is implemented by sinks that store connection records (a
// Writer, a FileWriter).
type ConnWriter interface {
	WriteConn(*ConnInfo) error
}

// WriteConn writes a connection record to the current part.
func (fw *FileWriter) WriteConn(c *ConnInfo) error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if fw.closed {
		return ErrClosed
	}
	return fw.cur.WriteConn(c)
}

// copyConns copies the connection records of src (a Reader or a
// MultiReader) to dst, when dst stores them.
func copyConns(dst Sink, src Source) error {
	cw, ok := dst.(ConnWriter)
	if !ok {
		return nil
	}
	s, ok := src.(interface{ Conns() []ConnInfo })
	if !ok {
		return nil
	}
	conns := s.Conns()
	for i := range conns {
		if err := cw.WriteConn(&conns[i]); err != nil {
			return err
		}
	}
	return nil
}
