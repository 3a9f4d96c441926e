package operations

// SetReplicaIdentity is the set_replica_identity operation. Not built yet: it is rejected at compile.
type SetReplicaIdentity struct {
	Table    string          `yaml:"table"`
	Identity ReplicaIdentity `yaml:"identity"`
}

// ReplicaIdentity is set_replica_identity's identity field.
type ReplicaIdentity struct {
	Type  string `yaml:"type"`
	Index string `yaml:"index"`
}

var _ Operation = (*SetReplicaIdentity)(nil)

func (op *SetReplicaIdentity) Compile(c *Compiler) error {
	return errNotBuilt("set_replica_identity")
}
