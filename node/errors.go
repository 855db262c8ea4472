package node

// The errors clients see, worded exactly as Redis 7 words them.
const (
	errSyntax        = "ERR syntax error"
	errNotInt        = "ERR value is not an integer or out of range"
	errNotFloat      = "ERR value is not a valid float"
	errOverflow      = "ERR increment or decrement would overflow"
	errIncrFloatNaN  = "ERR increment would produce NaN or Infinity"
	errWrongType     = "WRONGTYPE Operation against a key holding the wrong kind of value"
	errNoAuth        = "NOAUTH Authentication required."
	errWrongPass     = "WRONGPASS invalid username-password pair or user is disabled."
	errNoPassSet     = "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
	errOOM           = "OOM command not allowed when used memory > 'maxmemory'."
	errNoSuchKey     = "ERR no such key"
	errInvalidExpire = "ERR invalid expire time in '%s' command"
	errSelectCluster = "ERR SELECT is not allowed in cluster mode"
	errStringLen     = "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
	errOffsetRange   = "ERR offset is out of range"
	errNestedMulti   = "ERR MULTI calls can not be nested"
	errExecNoMulti   = "ERR EXEC without MULTI"
	errDiscardNoMult = "ERR DISCARD without MULTI"
	errWatchInMulti  = "ERR WATCH inside MULTI is not allowed"
	errExecAbort     = "EXECABORT Transaction discarded because of previous errors."
	errNoProto       = "NOPROTO unsupported protocol version"
	errCursor        = "ERR invalid cursor"
)
