//! The queues between `serve`'s threads: a FIFO bounded in bytes, with an exclusive owner while an oversized line streams through.
use super::*;

/// What a push does to the queue's owner.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Hold {
    /// Nothing.
    No,
    /// Become (or stay) the owner: other connections' pushes wait.
    Keep,
    /// Give ownership up.
    Release,
}

/// A FIFO bounded by the bytes it holds. A push waits while the queue is
/// full (an item larger than the whole bound still passes when the queue is
/// empty) or while another connection owns it. `close` makes pushes fail;
/// pops drain what is left, then return `None`.
pub(super) struct Queue<T> {
    inner: Mutex<QInner<T>>,
    readable: Condvar,
    writable: Condvar,
    cap: usize,
}

struct QInner<T> {
    items: VecDeque<(T, usize)>,
    bytes: usize,
    closed: bool,
    owner: Option<u64>,
}

impl<T> Queue<T> {
    pub(super) fn new(cap: usize) -> Queue<T> {
        Queue {
            inner: Mutex::new(QInner {
                items: VecDeque::new(),
                bytes: 0,
                closed: false,
                owner: None,
            }),
            readable: Condvar::new(),
            writable: Condvar::new(),
            cap,
        }
    }

    fn lock(&self) -> MutexGuard<'_, QInner<T>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Append `item` (accounted as `size` bytes) for connection `who`,
    /// waiting for room and ownership. Gives the item back if the queue is closed.
    pub(super) fn push(&self, who: u64, item: T, size: usize, hold: Hold) -> Result<(), T> {
        let size = size.saturating_add(ITEM_OVERHEAD);
        let mut g = self.lock();
        loop {
            if g.closed {
                return Err(item);
            }
            let mine = g.owner.is_none_or(|o| o == who);
            let room = g.bytes == 0 || g.bytes.saturating_add(size) <= self.cap;
            if mine && room {
                break;
            }
            g = self.writable.wait(g).unwrap_or_else(|p| p.into_inner());
        }
        g.bytes = g.bytes.saturating_add(size);
        g.items.push_back((item, size));
        match hold {
            Hold::No => {}
            Hold::Keep => g.owner = Some(who),
            Hold::Release => g.owner = None,
        }
        drop(g);
        self.readable.notify_one();
        if hold == Hold::Release {
            self.writable.notify_all();
        }
        Ok(())
    }

    fn take(&self, mut g: MutexGuard<'_, QInner<T>>) -> Option<T> {
        let (item, size) = g.items.pop_front()?;
        g.bytes = g.bytes.saturating_sub(size);
        drop(g);
        self.writable.notify_all();
        Some(item)
    }

    /// The next item, if one is there now.
    pub(super) fn try_pop(&self) -> Option<T> {
        let g = self.lock();
        self.take(g)
    }

    /// The next item, waiting for one until `until` at the latest.
    pub(super) fn pop_until(&self, until: Instant) -> Popped<T> {
        let mut g = self.lock();
        loop {
            if !g.items.is_empty() {
                return self.take(g).map_or(Popped::Closed, Popped::Item);
            }
            if g.closed {
                return Popped::Closed;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Popped::Timeout;
            }
            g = self
                .readable
                .wait_timeout(g, left)
                .map_or_else(|p| p.into_inner().0, |r| r.0);
        }
    }

    /// The next item, waiting for one; `None` once closed and empty.
    pub(super) fn pop(&self) -> Option<T> {
        let mut g = self.lock();
        loop {
            if !g.items.is_empty() {
                return self.take(g);
            }
            if g.closed {
                return None;
            }
            g = self.readable.wait(g).unwrap_or_else(|p| p.into_inner());
        }
    }

    pub(super) fn close(&self) {
        self.lock().closed = true;
        self.readable.notify_all();
        self.writable.notify_all();
    }
}

/// What [`Queue::pop_until`] found.
pub(super) enum Popped<T> {
    Item(T),
    Timeout,
    Closed,
}

/// Closes a queue when its consumer (or producer) thread ends, even by a
/// panic, so the threads on the other side never wait forever.
pub(super) struct CloseOnDrop<T>(pub(super) Arc<Queue<T>>);

impl<T> Drop for CloseOnDrop<T> {
    fn drop(&mut self) {
        self.0.close();
    }
}
