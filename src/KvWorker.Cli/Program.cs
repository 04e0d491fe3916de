using System.CommandLine;
using System.CommandLine.Help;
using KvWorker.Cli;

var root = KvCommands.Build();
var parse = root.Parse(args);
if (parse.Errors.Count > 0 && parse.Action is not HelpAction)
{
    foreach (var error in parse.Errors) await Console.Error.WriteLineAsync($"kv: {error.Message}");
    await Console.Error.WriteLineAsync("Run 'kv --help' or 'kv <command> --help' for usage.");
    return ExitCodes.Usage;
}
return await parse.InvokeAsync();
