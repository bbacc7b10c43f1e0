//! The `virtio_blk_valid` target's liveness invariant on chosen and on pseudo-random inputs:
//! spec-valid requests never reset the device (the defect of a full-length indirect table,
//! which the hostile targets could not see because a reset counts as acceptable there).

use vmm_fuzz::{Focus, Op, run_vm};

/// One BlkRequest op: vCPU, kind byte, then the request's bytes (type, indirect, segment
/// count, sector).
#[allow(clippy::unwrap_used)] // a test helper: the focus offers the op
fn request(kind: u8, indirect: bool, segs: u16, sector: u16) -> Vec<u8> {
    let op = Focus::VirtioBlkValid.kind_of(Op::BlkRequest).unwrap();
    let mut v = vec![0, op, kind, u8::from(indirect)];
    v.extend_from_slice(&segs.to_le_bytes());
    v.extend_from_slice(&sector.to_le_bytes());
    v
}

#[test]
fn a_full_length_indirect_table_and_the_longest_direct_chain_complete() {
    for platform in [0u8, 1, 2] {
        let mut input = vec![platform];
        // 254 segments (seg_max) of reads: an indirect table of 256 entries, the queue's size.
        input.extend(request(0, true, 254, 0));
        input.extend(request(1, true, 254, 0));
        // The longest direct chain: 254 + 2 descriptors in a queue of 256.
        input.extend(request(0, false, 254, 0));
        input.extend(request(3, true, 0, 0)); // GET_ID
        input.extend(request(2, false, 0, 0)); // FLUSH
        let s = run_vm(Focus::VirtioBlkValid, &input);
        assert_eq!(s.status[1] & 0x40, 0, "{s:?}");
        assert_eq!(
            s.queues.iter().find(|q| q.0 == 1).map(|q| (q.3, q.4)),
            Some((5, 5)),
            "{s:?}"
        );
    }
}

#[test]
fn pseudo_random_valid_requests_never_reset_the_device() {
    // xorshift: the same inputs every run.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..200 {
        let mut input = Vec::new();
        for _ in 0..64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            input.extend_from_slice(&x.to_le_bytes());
        }
        // run_vm panics with "liveness: ..." if a request resets the device or fails.
        let s = run_vm(Focus::VirtioBlkValid, &input);
        assert!(s.status.get(1).is_some_and(|st| st & 0x40 == 0), "{s:?}");
    }
}
