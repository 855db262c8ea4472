package fb

// errProtectedMode refuses a client of another host in protected mode.
const errProtectedMode = "DENIED Sluice is running in protected mode: no password is set for the " +
	"default user, so the FlatBuffers port only serves clients on the loopback interface. " +
	"Set a password (requirepass) or turn protected mode off (--protected-mode no)."
