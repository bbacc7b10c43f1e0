//! A fixed-capacity ring buffer (no allocation, no panics).

#[derive(Clone, Debug)]
pub(crate) struct Fifo<T, const N: usize> {
    buf: [T; N],
    head: usize,
    len: usize,
}

impl<T: Copy + Default, const N: usize> Fifo<T, N> {
    pub(crate) fn new() -> Self {
        Fifo {
            buf: [T::default(); N],
            head: 0,
            len: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `v`; false (and `v` dropped) when `len() >= limit` or the buffer is full.
    pub(crate) fn push(&mut self, v: T, limit: usize) -> bool {
        if self.len >= limit.min(N) || N == 0 {
            return false;
        }
        // head < N and len < N (checked above), so the sum cannot overflow.
        let at = self.head.wrapping_add(self.len).checked_rem(N).unwrap_or(0);
        match self.buf.get_mut(at) {
            Some(slot) => {
                *slot = v;
                self.len = self.len.wrapping_add(1);
                true
            }
            None => false,
        }
    }

    pub(crate) fn pop(&mut self) -> Option<T> {
        if self.len == 0 || N == 0 {
            return None;
        }
        let v = self.buf.get(self.head).copied()?;
        self.head = self.head.wrapping_add(1).checked_rem(N).unwrap_or(0);
        // len != 0 (checked above).
        self.len = self.len.wrapping_sub(1);
        Some(v)
    }

    pub(crate) fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::Fifo;

    #[test]
    fn wraps_and_limits() {
        let mut f = Fifo::<u16, 4>::new();
        assert_eq!(f.pop(), None);
        for round in 0..10u16 {
            assert!(f.push(round, 4));
            assert!(f.push(round + 100, 4));
            assert_eq!(f.pop(), Some(round));
            assert_eq!(f.pop(), Some(round + 100));
        }
        assert!(f.push(1, 1));
        assert!(!f.push(2, 1), "limit 1: a holding register");
        assert!(f.push(2, 8) && f.push(3, 8) && f.push(4, 8));
        assert!(!f.push(5, 8), "capacity caps the limit");
        assert_eq!(f.len(), 4);
        f.clear();
        assert!(f.is_empty());
    }
}
