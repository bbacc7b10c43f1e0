//! The VMM's own network endpoint: answers ARP requests and ICMP echo requests (ping) for one
//! IPv4 address, so a guest can `ping` the VMM. Everything else is dropped.

use super::{MAX_FRAME, NetBackend};
use alloc::collections::VecDeque;
use alloc::vec::Vec;

const ETH_HDR: usize = 14;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;
const MIN_FRAME: usize = 60;
/// Replies waiting for the guest's receive buffers; more are dropped.
pub const REPLY_QUEUE: usize = 32;

/// Answers ARP and ICMP echo for `ip`, as `mac`.
#[derive(Debug)]
pub struct ArpIcmpResponder {
    mac: [u8; 6],
    ip: [u8; 4],
    replies: VecDeque<Vec<u8>>,
    /// Frames the guest sent (for statistics).
    pub sent: u64,
    /// Replies generated.
    pub answered: u64,
}

fn be16(b: &[u8], off: usize) -> u16 {
    match b.get(off..off.saturating_add(2)) {
        Some(&[h, l]) => u16::from_be_bytes([h, l]),
        _ => 0,
    }
}

/// The Internet checksum (RFC 1071) of `data`.
pub fn inet_checksum(data: &[u8]) -> u16 {
    // 16-bit words are summed in blocks of 0x8000 (64 KiB): a block's sum is below
    // 0x8000 * 0xffff < 2^31, and the running sum is folded to at most 0xffff before the
    // next block is added, so no addition can wrap, whatever the length. The inner loop has
    // no carry to fold on every word, so the compiler vectorizes it (folding after every
    // addition made a 1500-byte ping cost twice as many instructions).
    let fold = |s: u32| (s & 0xffff).wrapping_add(s >> 16);
    let mut sum: u32 = 0;
    for block in data.chunks(0x1_0000) {
        let mut words = block.chunks_exact(2);
        let mut s: u32 = 0;
        for w in &mut words {
            if let &[h, l] = w {
                s = s.wrapping_add(u32::from(u16::from_be_bytes([h, l])));
            }
        }
        // Only the last block can have an odd length.
        if let &[last] = words.remainder() {
            s = s.wrapping_add(u32::from(last) << 8);
        }
        sum = sum.wrapping_add(s);
        while sum > 0xffff {
            sum = fold(sum);
        }
    }
    !(sum as u16)
}

impl ArpIcmpResponder {
    /// The VMM at `ip` with hardware address `mac`.
    pub fn new(mac: [u8; 6], ip: [u8; 4]) -> Self {
        ArpIcmpResponder {
            mac,
            ip,
            replies: VecDeque::new(),
            sent: 0,
            answered: 0,
        }
    }

    fn queue(&mut self, mut frame: Vec<u8>) {
        if self.replies.len() >= REPLY_QUEUE {
            return;
        }
        if frame.len() < MIN_FRAME {
            frame.resize(MIN_FRAME, 0);
        }
        self.answered = self.answered.saturating_add(1);
        self.replies.push_back(frame);
    }

    fn eth_header(&self, dst: &[u8], ethertype: u16) -> Vec<u8> {
        let mut f = Vec::with_capacity(MIN_FRAME);
        f.extend_from_slice(dst);
        f.extend_from_slice(&self.mac);
        f.extend_from_slice(&ethertype.to_be_bytes());
        f
    }

    fn arp(&mut self, frame: &[u8]) {
        let Some(arp) = frame.get(ETH_HDR..ETH_HDR + 28) else {
            return;
        };
        // Ethernet/IPv4, request, for our address.
        if be16(arp, 0) != 1 || be16(arp, 2) != ETHERTYPE_IPV4 || be16(arp, 6) != 1 {
            return;
        }
        let (Some(&6), Some(&4)) = (arp.get(4), arp.get(5)) else {
            return;
        };
        let (Some(sha), Some(spa), Some(tpa)) = (arp.get(8..14), arp.get(14..18), arp.get(24..28))
        else {
            return;
        };
        if tpa != self.ip {
            return;
        }
        let mut f = self.eth_header(sha, ETHERTYPE_ARP);
        f.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 2]);
        f.extend_from_slice(&self.mac);
        f.extend_from_slice(&self.ip);
        f.extend_from_slice(sha);
        f.extend_from_slice(spa);
        self.queue(f);
    }

    fn ipv4(&mut self, frame: &[u8]) {
        let Some(ip) = frame.get(ETH_HDR..) else {
            return;
        };
        let Some(&vihl) = ip.first() else { return };
        let ihl = usize::from(vihl & 0xf) * 4;
        let total = usize::from(be16(ip, 2));
        if vihl >> 4 != 4 || ihl < 20 || total < ihl || total > ip.len() {
            return;
        }
        let Some(hdr) = ip.get(..ihl) else { return };
        if inet_checksum(hdr) != 0 {
            return;
        }
        // Not a fragment, ICMP, to us.
        if be16(ip, 6) & 0x3fff != 0
            || ip.get(9) != Some(&1)
            || ip.get(16..20) != Some(&self.ip[..])
        {
            return;
        }
        let (Some(src), Some(icmp)) = (ip.get(12..16), ip.get(ihl..total)) else {
            return;
        };
        // Echo request, code 0, with a valid checksum.
        if icmp.len() < 8 || icmp.first() != Some(&8) || icmp.get(1) != Some(&0) {
            return;
        }
        if inet_checksum(icmp) != 0 {
            return;
        }
        let Some(eth_src) = frame.get(6..12) else {
            return;
        };
        let mut f = self.eth_header(eth_src, ETHERTYPE_IPV4);
        let len = icmp.len().saturating_add(20);
        let mut iph = [0u8; 20];
        iph[0] = 0x45;
        iph[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        if let (Some(d), Some(s)) = (iph.get_mut(4..6), ip.get(4..6)) {
            d.copy_from_slice(s); // identification
        }
        iph[8] = 64; // TTL
        iph[9] = 1; // ICMP
        iph[12..16].copy_from_slice(&self.ip);
        iph[16..20].copy_from_slice(src);
        let c = inet_checksum(&iph);
        iph[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&iph);
        let start = f.len();
        f.extend_from_slice(icmp);
        if let Some(reply) = f.get_mut(start..) {
            if let Some(t) = reply.get_mut(0) {
                *t = 0; // echo reply
            }
            if let Some(c) = reply.get_mut(2..4) {
                c.copy_from_slice(&[0, 0]);
            }
            let c = inet_checksum(reply);
            if let Some(cs) = reply.get_mut(2..4) {
                cs.copy_from_slice(&c.to_be_bytes());
            }
        }
        self.queue(f);
    }
}

impl NetBackend for ArpIcmpResponder {
    fn send(&mut self, frame: &[u8]) {
        self.sent = self.sent.saturating_add(1);
        let Some(dst) = frame.get(0..6) else { return };
        // Broadcast (ARP) or to us.
        if dst != [0xff; 6] && dst != self.mac {
            return;
        }
        match be16(frame, 12) {
            ETHERTYPE_ARP => self.arp(frame),
            ETHERTYPE_IPV4 => self.ipv4(frame),
            _ => {}
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> Option<usize> {
        // Bounded: each pass removes a frame.
        while let Some(frame) = self.replies.pop_front() {
            if frame.len() <= buf.len().min(MAX_FRAME)
                && let Some(dst) = buf.get_mut(..frame.len())
            {
                dst.copy_from_slice(&frame);
                return Some(frame.len());
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::inet_checksum;
    use alloc::vec::Vec;

    /// RFC 1071: sum in a wide integer, fold at the end.
    fn reference(data: &[u8]) -> u16 {
        let mut sum: u64 = 0;
        for (i, &b) in data.iter().enumerate() {
            sum += if i % 2 == 0 {
                u64::from(b) << 8
            } else {
                u64::from(b)
            };
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    #[test]
    fn checksum_matches_rfc_1071() {
        // RFC 1071 section 3's example: the sum is 0xddf2.
        assert_eq!(
            inet_checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            !0xddf2
        );
        assert_eq!(inet_checksum(&[]), 0xffff);
        // Every length up to a few blocks' edges, odd and even, all-ones (the largest sums)
        // and a pattern; a checksummed buffer checks to zero.
        let pattern: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        let ones = alloc::vec![0xffu8; 300_000];
        for len in (0..70).chain([1499, 1500, 65535, 65536, 65537, 131_073, 300_000]) {
            for data in [&pattern[..len], &ones[..len]] {
                let c = inet_checksum(data);
                assert_eq!(c, reference(data), "len {len}");
                if len % 2 == 0 {
                    let mut with = data.to_vec();
                    with.extend_from_slice(&c.to_be_bytes());
                    assert_eq!(inet_checksum(&with), 0, "len {len}");
                }
            }
        }
    }
}
