-- Each state column takes only the values its enum declares (iaas-store: DecommissionState,
-- DecommissionVmState, DecommissionStepState, LeaseState; iaas-config: OnFailure). A value
-- added to an enum needs its constraint widened here, in a new migration.
ALTER TABLE decommissions ADD CONSTRAINT decommissions_state_check
    CHECK (state IN ('pending_confirmation', 'running', 'done', 'failed', 'cancelled'));
ALTER TABLE decommission_vms ADD CONSTRAINT decommission_vms_state_check
    CHECK (state IN ('pending', 'running', 'done', 'failed', 'cancelled'));
ALTER TABLE decommission_steps ADD CONSTRAINT decommission_steps_state_check
    CHECK (state IN ('pending', 'running', 'done', 'skipped', 'warning', 'failed'));
ALTER TABLE decommission_steps ADD CONSTRAINT decommission_steps_on_failure_check
    CHECK (on_failure IN ('stop', 'warn'));
ALTER TABLE leases ADD CONSTRAINT leases_state_check
    CHECK (state IN ('active', 'powered_off', 'deleted', 'held', 'excluded', 'closed', 'decommissioning', 'deleting'));

-- While the sweep deletes the VM (state 'deleting'): its share of the owner's quota, given back
-- with the change to 'deleted' even when the VM is already gone by then.
ALTER TABLE leases ADD COLUMN share_cpus BIGINT, ADD COLUMN share_memory_mb BIGINT;
