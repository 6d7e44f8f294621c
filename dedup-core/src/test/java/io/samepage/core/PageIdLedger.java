package io.samepage.core;

import java.lang.reflect.Field;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The engine's page ids ({@link PageIds}) against the guests that may hold them: a guest the engine
 * lists, or a destroyed one whose ids wait for their release, on PageIds' list of guests destroyed and
 * not looked at yet or in its quarantine. Each chunk taken must be one such guest's and resolve to it;
 * no guest may be in two of those places, nor any chunk two guests'; every chunk not taken must resolve
 * to no guest; and PageIds' flag that a guest was destroyed since its last release must be set exactly
 * when its list of those guests is not empty. So a creation that failed and kept its ids, or a release
 * that freed a guest's ids but kept the guest on its list (to be released again, with a live guest's
 * ids by then), shows here, though every listed guest's ids look right.
 *
 * <p>Reads PageIds' private fields through reflection, under its monitor: no main code but PageIds
 * reads them. Only while no guest is created or destroyed and no scanner batch runs.
 */
final class PageIdLedger {

    private PageIdLedger() {
    }

    /** How the engine's page ids differ from what its guests hold, in one line; null if they do not. */
    static String differences(DedupEngine engine) {
        PageIds pageIds = (PageIds) read(DedupEngine.class, engine, "pageIds");
        List<String> found = new ArrayList<>();
        synchronized (pageIds) {
            Map<Guest, String> holders = new LinkedHashMap<>();       // each guest that may hold ids, and where it is
            for (Guest guest : engine.guests()) {
                holders.put(guest, "live");
            }
            GuestWaitList destroyed = (GuestWaitList) read(PageIds.class, pageIds, "destroyed");
            addWaiting(holders, destroyed, "in PageIds' destroyed list", found);
            addWaiting(holders, (GuestWaitList) read(PageIds.class, pageIds, "quarantined"), "in quarantine", found);
            if (pageIds.anyDestroyed() != (destroyed.size() > 0)) {
                found.add("PageIds says " + (pageIds.anyDestroyed() ? "a" : "no") + " destroyed guest waits to be looked at, yet "
                        + destroyed.size() + " are in its destroyed list");
            }
            BitSet taken = (BitSet) read(PageIds.class, pageIds, "used");
            BitSet held = new BitSet();
            holders.forEach((guest, where) -> {
                int first = guest.table().basePageId() >>> PageIds.CHUNK_SHIFT;
                int end = first + (int) (((long) guest.pageCount() + PageIds.CHUNK_PAGES - 1) >>> PageIds.CHUNK_SHIFT);
                for (int chunk = first; chunk < end; chunk++) {
                    String wrong = held.get(chunk) ? "are another guest's too" : !taken.get(chunk) ? "are free"
                            : pageIds.owner(chunk << PageIds.CHUNK_SHIFT) != guest ? "resolve to " + pageIds.owner(chunk << PageIds.CHUNK_SHIFT)
                            : null;
                    if (wrong != null) {
                        found.add("guest " + guest.name() + " (" + where + "): its page ids " + ids(chunk) + " " + wrong);
                        break;
                    }
                }
                held.set(first, end);
            });
            BitSet unheld = (BitSet) taken.clone();
            unheld.andNot(held);
            if (!unheld.isEmpty()) {
                found.add("page ids " + ids(unheld.nextSetBit(0)) + (unheld.cardinality() > 1 ? " and " + (unheld.cardinality() - 1)
                        + " more chunks" : "") + " are taken, yet no live guest, nor any destroyed guest waiting for their release, holds them");
            }
            Guest[][] owners = (Guest[][]) read(PageIds.class, pageIds, "owners");
            BitSet owned = new BitSet();
            for (int s = 0; s < owners.length; s++) {
                for (int c = 0; owners[s] != null && c < PageIds.SEGMENT_CHUNKS; c++) {
                    owned.set((s << PageIds.SEGMENT_SHIFT) + c, owners[s][c] != null);
                }
            }
            owned.andNot(taken);
            if (!owned.isEmpty()) {
                int chunk = owned.nextSetBit(0);
                found.add("free page ids " + ids(chunk) + (owned.cardinality() > 1 ? " and " + (owned.cardinality() - 1)
                        + " more chunks" : "") + " resolve to " + pageIds.owner(chunk << PageIds.CHUNK_SHIFT));
            }
        }
        return found.isEmpty() ? null : String.join("; ", found);
    }

    private static void addWaiting(Map<Guest, String> holders, GuestWaitList list, String where, List<String> found) {
        for (int i = 0; i < list.size(); i++) {
            Guest guest = list.get(i);
            String was = holders.putIfAbsent(guest, where);
            if (was != null) {
                found.add("guest " + guest.name() + " is both " + was + " and " + where);
            } else if (!guest.isDestroyed()) {
                found.add("guest " + guest.name() + " (" + where + ") is not destroyed");
            }
        }
    }

    /** The ids of chunk {@code chunk}, as "first to last (chunk n)". */
    private static String ids(int chunk) {
        long first = (long) chunk << PageIds.CHUNK_SHIFT;
        return first + " to " + (first + PageIds.CHUNK_PAGES - 1) + " (chunk " + chunk + ")";
    }

    private static Object read(Class<?> type, Object target, String field) {
        try {
            Field f = type.getDeclaredField(field);
            f.setAccessible(true);
            return f.get(target);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException(type.getSimpleName() + " has no field '" + field + "' to read its page ids from", e);
        }
    }
}
