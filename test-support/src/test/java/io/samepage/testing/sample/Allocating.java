package io.samepage.testing.sample;

import java.util.HashMap;
import java.util.function.Function;

/** Code for {@code AllocationFaultLoaderTest} to rewrite: four allocation sites, the last after a change. */
public final class Allocating implements Function<HashMap<String, Integer>, int[]> {

    @Override
    public int[] apply(HashMap<String, Integer> map) {
        int[] made = new int[2];
        map.put("made", made.length);       // boxing, the put, and the table's growth after the put
        return made;
    }
}
