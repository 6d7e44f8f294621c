package io.samepage.cli;

/** Entry point of the {@code samepage} command: runs {@link SamepageCommand} and exits with its code. */
public final class Main {

    private Main() {
    }

    public static void main(String[] args) {
        System.exit(SamepageCommand.newCommandLine(args).execute(args));
    }
}
