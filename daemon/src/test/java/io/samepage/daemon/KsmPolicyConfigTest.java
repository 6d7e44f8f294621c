package io.samepage.daemon;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.samepage.host.KsmTuner;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The {@code ksm_*} keys of the daemon's config: what they set, and the line and reason of each refusal. */
class KsmPolicyConfigTest {

    private static DaemonConfig parse(String... lines) {
        List<String> all = new java.util.ArrayList<>(List.of("source=/var/lib/vm1.mem"));
        all.addAll(List.of(lines));
        return DaemonConfig.parse("d.conf", all);
    }

    @Test
    void aConfigWithoutPolicyKeysLeavesThePolicyOffWithItsDefaults() {
        assertEquals(KsmPolicyConfig.defaults(), parse().ksmPolicy());
        assertEquals(KsmPolicyConfig.Mode.OFF, parse().ksmPolicy().mode());
    }

    @Test
    void everyPolicyKeyIsReadAndReachesTheDaemonContext() {
        DaemonConfig config = parse("ksm_policy=dry_run", "ksm_min_duplicate_percent=12.5", "ksm_min_saving_mib=32",
                "ksm_sample_mib=64", "ksm_rate=ksmtuned", "ksm_max_page_sharing=128", "ksmd_cpu_budget_percent=7.5");
        KsmPolicyConfig expected = new KsmPolicyConfig(KsmPolicyConfig.Mode.DRY_RUN,
                new KsmTuner.Policy(12.5, 32L << 20, (64L << 20) / 4096, KsmTuner.Rate.KSMTUNED, null), 128, 7.5);
        assertEquals(expected, config.ksmPolicy());
        assertEquals(expected, config.applyTo(new Daemon.Context()).ksmPolicy());
        assertEquals(KsmPolicyConfig.Mode.ON, parse("ksm_policy=on").ksmPolicy().mode());
        assertEquals(KsmTuner.Rate.ADVISOR, parse("ksm_rate=advisor").ksmPolicy().policy().rate());
        assertEquals(0, parse("ksm_max_page_sharing=0").ksmPolicy().maxPageSharing());
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
        "ksm_policy=yes|d.conf:2: ksm_policy=yes: must be off, on or dry_run, not 'yes'",
        "ksm_policy=ON|d.conf:2: ksm_policy=ON: must be off, on or dry_run, not 'ON'",
        "ksm_min_duplicate_percent=101|d.conf:2: ksm_min_duplicate_percent=101: must be 0 to 100, not '101'",
        "ksm_min_duplicate_percent=-1|d.conf:2: ksm_min_duplicate_percent=-1: must be 0 to 100, not '-1'",
        "ksm_min_duplicate_percent=NaN|d.conf:2: ksm_min_duplicate_percent=NaN: must be 0 to 100, not 'NaN'",
        "ksm_min_duplicate_percent=5%|d.conf:2: ksm_min_duplicate_percent=5%: must be a number of percent, not '5%'",
        "ksm_min_saving_mib=-1|d.conf:2: ksm_min_saving_mib=-1: must be 0 to 8796093022207 MiB, not -1",
        "ksm_min_saving_mib=1.5|d.conf:2: ksm_min_saving_mib=1.5: must be a whole number, not '1.5'",
        "ksm_sample_mib=0|d.conf:2: ksm_sample_mib=0: must be 1 to 65536 MiB, not 0",
        "ksm_sample_mib=65537|d.conf:2: ksm_sample_mib=65537: must be 1 to 65536 MiB, not 65537",
        "ksm_rate=fast|d.conf:2: ksm_rate=fast: must be advisor or ksmtuned, not 'fast'",
        "ksm_max_page_sharing=1|d.conf:2: ksm_max_page_sharing=1: must be 2 to 2147483647, or 0 to keep the kernel's, not 1",
        "ksmd_cpu_budget_percent=0|d.conf:2: ksmd_cpu_budget_percent=0: must be above 0 to 100, not '0'",
        "ksmd_cpu_budget_percent=100.5|d.conf:2: ksmd_cpu_budget_percent=100.5: must be above 0 to 100, not '100.5'",
        "ksmd_cpu_budget_percent=Infinity|d.conf:2: ksmd_cpu_budget_percent=Infinity: must be above 0 to 100, not 'Infinity'",
    })
    void aBadPolicyValueIsRefusedWithFileAndLine(String line, String message) {
        DaemonException refused = assertThrows(DaemonException.class, () -> parse(line));
        assertEquals(DaemonException.Kind.CONFIG, refused.kind());
        assertEquals(message, refused.getMessage());
    }

    @Test
    void aPolicyKeyGivenTwiceIsRefusedWithBothLines() {
        assertEquals("d.conf:3: ksm_policy: given twice (first on line 2)",
                assertThrows(DaemonException.class, () -> parse("ksm_policy=on", "ksm_policy=off")).getMessage());
    }
}
