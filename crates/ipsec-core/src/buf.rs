//! Caller-owned packet buffers with headroom and tailroom, so that ESP/AH can encapsulate and
//! decapsulate in place without allocating or copying the payload.

/// Headroom reserved in front of a packet: outer IPv6 (40) + UDP (8) + AH with the largest ICV
/// (12 + 8 + 32, padded) + ESP header (8) + IV (16), rounded up generously.
pub const DEFAULT_HEADROOM: usize = 192;
/// Tailroom: ESP padding (up to 255) + pad length + next header + the largest ICV (32).
pub const DEFAULT_TAILROOM: usize = 320;

/// A packet inside a fixed-capacity buffer. The packet occupies `start..end`.
#[derive(Clone)]
pub struct PacketBuf {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl core::fmt::Debug for PacketBuf {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PacketBuf")
            .field("capacity", &self.buf.len())
            .field("start", &self.start)
            .field("len", &self.len())
            .finish()
    }
}

/// Not enough headroom or tailroom for an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoSpace;

impl PacketBuf {
    /// An empty buffer able to hold packets of up to `mtu` bytes plus the default head- and
    /// tailroom.
    pub fn with_mtu(mtu: usize) -> Self {
        Self::new(DEFAULT_HEADROOM + mtu + DEFAULT_TAILROOM, DEFAULT_HEADROOM)
    }

    /// An empty buffer of `capacity` bytes whose packet will start at `headroom`.
    pub fn new(capacity: usize, headroom: usize) -> Self {
        let headroom = headroom.min(capacity);
        Self {
            buf: vec![0u8; capacity].into_boxed_slice(),
            start: headroom,
            end: headroom,
        }
    }

    /// A buffer holding a copy of `packet` with the default head- and tailroom.
    pub fn from_packet(packet: &[u8]) -> Self {
        let mut b = Self::with_mtu(packet.len());
        // Cannot fail: the buffer was sized for this packet.
        let _ = b.set_packet(packet);
        b
    }

    /// Replaces the content with a copy of `packet`, starting at the default headroom (or less
    /// if the buffer is small). Does not allocate.
    pub fn set_packet(&mut self, packet: &[u8]) -> Result<(), NoSpace> {
        let head = DEFAULT_HEADROOM.min(self.buf.len().saturating_sub(packet.len()));
        let dst = self.buf.get_mut(head..head + packet.len()).ok_or(NoSpace)?;
        dst.copy_from_slice(packet);
        self.start = head;
        self.end = head + packet.len();
        Ok(())
    }

    /// Prepares for a read of up to `max` bytes at the default headroom: returns the slice to fill.
    /// Call [`set_len`](Self::set_len) with the number of bytes read.
    pub fn read_slot(&mut self) -> &mut [u8] {
        let head = DEFAULT_HEADROOM.min(self.buf.len());
        self.start = head;
        self.end = head;
        let tail = self.buf.len().saturating_sub(DEFAULT_TAILROOM).max(head);
        &mut self.buf[head..tail]
    }

    /// Sets the packet length after [`read_slot`](Self::read_slot).
    pub fn set_len(&mut self, len: usize) {
        self.end = (self.start + len).min(self.buf.len());
    }

    /// The packet bytes.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// The packet bytes, mutable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.end]
    }

    /// Packet length.
    #[inline]
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// True when the packet is empty.
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }

    /// Free bytes in front of the packet.
    #[inline]
    pub fn headroom(&self) -> usize {
        self.start
    }

    /// Free bytes after the packet.
    #[inline]
    pub fn tailroom(&self) -> usize {
        self.buf.len() - self.end
    }

    /// Grows the packet at the front by `n` bytes (their content is unspecified).
    #[inline]
    pub fn push_front(&mut self, n: usize) -> Result<(), NoSpace> {
        if n > self.start {
            return Err(NoSpace);
        }
        self.start -= n;
        Ok(())
    }

    /// Removes `n` bytes from the front.
    #[inline]
    pub fn pull_front(&mut self, n: usize) -> Result<(), NoSpace> {
        if n > self.len() {
            return Err(NoSpace);
        }
        self.start += n;
        Ok(())
    }

    /// Grows the packet at the back by `n` bytes (their content is unspecified).
    #[inline]
    pub fn push_back(&mut self, n: usize) -> Result<(), NoSpace> {
        if n > self.tailroom() {
            return Err(NoSpace);
        }
        self.end += n;
        Ok(())
    }

    /// Removes `n` bytes from the back.
    #[inline]
    pub fn trim_back(&mut self, n: usize) -> Result<(), NoSpace> {
        if n > self.len() {
            return Err(NoSpace);
        }
        self.end -= n;
        Ok(())
    }

    /// Moves the first `len` bytes of the packet `by` bytes towards the front (after a
    /// [`push_front`](Self::push_front) of `by`): opens a gap of `by` bytes after them.
    #[inline]
    pub(crate) fn open_gap(&mut self, len: usize, by: usize) -> Result<(), NoSpace> {
        self.push_front(by)?;
        let s = self.start;
        if s + by + len > self.end {
            return Err(NoSpace);
        }
        move_header(&mut self.buf, s + by, s, len);
        Ok(())
    }

    /// Removes `by` bytes that follow the first `len` bytes of the packet.
    #[inline]
    pub(crate) fn close_gap(&mut self, len: usize, by: usize) -> Result<(), NoSpace> {
        let s = self.start;
        if s + len + by > self.end {
            return Err(NoSpace);
        }
        move_header(&mut self.buf, s, s + by, len);
        self.start += by;
        Ok(())
    }
}

/// Moves `len` bytes from `from` to `to` inside `buf` (ranges may overlap). The common IP
/// header sizes go through fixed-size copies the compiler inlines instead of a memmove call.
#[inline]
fn move_header(buf: &mut [u8], from: usize, to: usize, len: usize) {
    fn fixed<const N: usize>(buf: &mut [u8], from: usize, to: usize) {
        let mut tmp = [0u8; N];
        tmp.copy_from_slice(&buf[from..from + N]);
        buf[to..to + N].copy_from_slice(&tmp);
    }
    match len {
        20 => fixed::<20>(buf, from, to),
        40 => fixed::<40>(buf, from, to),
        _ => buf.copy_within(from..from + len, to),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps() {
        let mut b = PacketBuf::from_packet(&[1, 2, 3, 4, 5, 6]);
        b.open_gap(2, 3).unwrap();
        assert_eq!(b.len(), 9);
        assert_eq!(&b.data()[..2], &[1, 2]);
        assert_eq!(&b.data()[5..], &[3, 4, 5, 6]);
        b.close_gap(2, 3).unwrap();
        assert_eq!(b.data(), &[1, 2, 3, 4, 5, 6]);
        assert_eq!(b.close_gap(4, 3), Err(NoSpace));
        assert!(b.push_front(10_000).is_err());
        assert!(b.push_back(10_000).is_err());
    }
}
